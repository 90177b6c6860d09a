"""A CPU stand-in for ``cupy.cuda.nccl`` (private; for tests of the NCCL path without a GPU).

It offers the calls funcgrad's ``NcclEngine`` makes — ``get_unique_id``,
``NcclCommunicator(nranks, uid, rank)`` with ``allReduce``, ``bcast``, ``allGather`` on raw
addresses — and carries them out with MPI on the host memory at those addresses. Paired
with ``testing_backend.StandInArray`` (whose ``__array__`` raises), a test runs the whole
device path: bucketing on the device module, pointers handed to the engine, and no host
copy anywhere (a ``.get()`` or ``numpy.asarray`` would be visible). Every call is logged
in ``calls`` so a test can count messages.

    initialize(backend="nccl", _nccl=testing_nccl, _device_xp=standin_xp,
               _device_ptr=testing_nccl.address)
"""
from __future__ import annotations

import ctypes

import numpy as np

NCCL_INT8, NCCL_UINT8, NCCL_INT32, NCCL_UINT32 = "int8", "uint8", "int32", "uint32"
NCCL_INT64, NCCL_UINT64, NCCL_FLOAT16 = "int64", "uint64", "float16"
NCCL_FLOAT32, NCCL_FLOAT64 = "float32", "float64"
NCCL_SUM, NCCL_MAX, NCCL_MIN = "sum", "max", "min"

calls = []


def address(a):
    """The address of a stand-in array's data (CuPy's ``a.data.ptr``)."""
    return a.data.ctypes.data


def get_unique_id():
    return tuple(np.random.default_rng().integers(0, 256, 16).tolist())


def _view(ptr, count, dtype):
    dtype = np.dtype(dtype)
    raw = (ctypes.c_char * (count * dtype.itemsize)).from_address(ptr)
    return np.frombuffer(raw, dtype=dtype, count=count)


class NcclCommunicator:
    def __init__(self, nranks, uid, rank):
        from mpi4py import MPI
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD
        if self.comm.Get_size() != nranks or self.comm.Get_rank() != rank:
            raise RuntimeError("stand-in NCCL: ranks disagree with MPI_COMM_WORLD")
        self.uid = uid

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        calls.append(("allReduce", count, datatype, op))
        send, recv = _view(sendbuf, count, datatype), _view(recvbuf, count, datatype)
        mop = {"sum": self.MPI.SUM, "max": self.MPI.MAX, "min": self.MPI.MIN}[op]
        self.comm.Allreduce(self.MPI.IN_PLACE if sendbuf == recvbuf else send, recv, op=mop)

    def bcast(self, buff, count, datatype, root, stream):
        calls.append(("bcast", count, datatype, root))
        self.comm.Bcast(_view(buff, count, datatype), root=root)

    def allGather(self, sendbuf, recvbuf, count, datatype, stream):
        calls.append(("allGather", count, datatype))
        n = self.comm.Get_size()
        self.comm.Allgather(_view(sendbuf, count, datatype), _view(recvbuf, count * n, datatype))
