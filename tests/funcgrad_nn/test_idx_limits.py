"""read_idx/parse_idx limits: a gzip file is decompressed only as far as its header's
shape says (a small bomb cannot fill the memory), and the dimension product is computed
without int64 wrap-around."""
import gzip
import struct
import tracemalloc
import zlib

import numpy as np
import pytest

from funcgrad_nn.datasets import parse_idx, read_idx


def header(dims, code=0x08):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def gzip_of(head, zeros):
    """gzip of ``head`` followed by ``zeros`` zero bytes, built without holding them."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [c.compress(head)]
    chunk = bytes(1 << 20)
    for _ in range(zeros >> 20):
        out.append(c.compress(chunk))
    out.append(c.flush())
    return b"".join(out)


def test_gzip_bomb_is_not_decompressed_past_the_declared_shape(tmp_path):
    path = tmp_path / "bomb-idx1-ubyte.gz"
    path.write_bytes(gzip_of(header([10]), 200 << 20))     # 10 bytes declared, 200 MiB
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="more data than"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak


def test_declared_shape_larger_than_any_gzip_of_that_size(tmp_path):
    path = tmp_path / "huge-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header([60000, 2000, 2000]) + bytes(100)))
    with pytest.raises(ValueError, match="cannot hold"):
        read_idx(path)


def test_truncated_gzip_data_still_reported(tmp_path):
    path = tmp_path / "short-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(header([10]) + bytes(5)))
    with pytest.raises(ValueError, match="header says shape"):
        read_idx(path)


def test_gzip_round_trip_and_multi_member(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = header([2, 3, 4]) + arr.tobytes()
    path = tmp_path / "a.gz"
    path.write_bytes(gzip.compress(data[:10]) + gzip.compress(data[10:]))
    np.testing.assert_array_equal(read_idx(path), arr)


@pytest.mark.parametrize("dims", [[65536] * 4, [2 ** 32 - 1] * 3, [4294967295, 4294967295]])
def test_dimension_product_does_not_wrap(tmp_path, dims):
    data = header(dims)                 # no data bytes at all
    with pytest.raises(ValueError, match=r"IDX file .*header says shape"):
        parse_idx(data, "crafted")
    path = tmp_path / "crafted"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"IDX file .*header says shape"):
        read_idx(path)
