"""MNIST/FashionMNIST find their files in torchvision's layout or directly in ``root``
(Debian's dataset-fashion-mnist package layout)."""
import os
import shutil

import numpy as np
import pytest

from funcgrad_nn.datasets import MNIST, FashionMNIST
from tests.funcgrad_nn.test_datasets import write_mnist


@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
@pytest.mark.parametrize("gz", [False, True])
def test_a_root_holding_the_four_files_itself(tmp_path, cls, gz):
    made = write_mnist(str(tmp_path), folder=cls.__name__, gz=gz)
    raw = tmp_path / cls.__name__ / "raw"
    for name in os.listdir(raw):
        shutil.move(str(raw / name), str(tmp_path / name))
    shutil.rmtree(tmp_path / cls.__name__)
    for train, prefix in ((True, "train"), (False, "t10k")):
        ds = cls(str(tmp_path), train=train)
        np.testing.assert_array_equal(ds.data, made[prefix][0])
        np.testing.assert_array_equal(ds.targets, made[prefix][1])


def test_missing_files_name_both_layouts_and_the_offline_package(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        FashionMNIST(str(tmp_path))
    msg = str(e.value)
    assert os.path.join(str(tmp_path), "FashionMNIST", "raw", "train-images-idx3-ubyte") in msg
    assert os.path.join(str(tmp_path), "train-images-idx3-ubyte.gz") in msg
    assert "apt-get install dataset-fashion-mnist" in msg


@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
def test_class_to_idx_as_torchvision(tmp_path, cls):
    write_mnist(str(tmp_path), folder=cls.__name__, gz=False)
    ds = cls(str(tmp_path), train=False)
    assert list(ds.class_to_idx) == ds.classes and len(ds.classes) == 10
    assert [ds.class_to_idx[c] for c in ds.classes] == list(range(10))
    if cls is FashionMNIST:
        assert ds.class_to_idx["Ankle boot"] == 9
    else:
        assert ds.class_to_idx["7 - seven"] == 7
