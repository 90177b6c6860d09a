"""One rank fails while the other waits in a collective: the job must end, not hang.

    mpiexec -n 2 python _worker_fail.py HOW

HOW says how rank 1 ends: ``raise`` (an uncaught RuntimeError), ``exit`` (sys.exit with
a message), ``exit2`` (sys.exit(2)), ``systemexit3`` (a bare ``raise SystemExit(3)``),
``thread`` (an uncaught exception in a thread), ``osexit4`` (``os._exit(4)``). Three
endings must not abort: ``exit0`` (``raise SystemExit(0)``; rank 0 then finishes its
own work), ``caught`` (a ``sys.exit(5)`` that is caught) and ``none`` (a normal end).
"""
import os
import sys
import threading
import time

import numpy as np


def fail(how):
    if how == "raise":
        raise RuntimeError("boom on rank 1")
    if how == "exit":
        sys.exit("boom on rank 1 (sys.exit)")
    if how == "exit2":
        sys.exit(2)
    if how == "systemexit3":
        raise SystemExit(3)
    if how == "thread":
        def work():
            raise RuntimeError("boom on rank 1 (thread)")
        t = threading.Thread(target=work)
        t.start()
        t.join()
        time.sleep(60)               # only the abort ends this rank
    if how == "osexit4":
        os._exit(4)


def main():
    import funcgrad
    import funcgrad.distributed as dist
    dist.initialize()
    how = sys.argv[1]
    r = funcgrad.process_index()
    dist.all_reduce(np.ones(3))                       # both ranks get here
    if how == "exit0":
        if r == 1:
            raise SystemExit(0)
        time.sleep(1.0)                               # rank 0 still works after rank 1 left
        print(f"rank {r} finished", flush=True)
        return
    if r == 1:
        time.sleep(0.2)
        if how == "caught":
            try:
                sys.exit(5)
            except SystemExit:
                pass
        else:
            fail(how)
    dist.all_reduce(np.ones(3))                       # rank 0 waits here for rank 1
    if how in ("caught", "none"):
        print(f"rank {r} finished", flush=True)
        return
    time.sleep(60)
    print("rank 0 was never stopped")


if __name__ == "__main__":
    main()
