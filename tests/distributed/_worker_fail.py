"""One rank fails while the other waits in a collective: the job must end, not hang.

    mpiexec -n 2 python _worker_fail.py raise|exit
"""
import sys
import time

import numpy as np


def main():
    import funcgrad
    import funcgrad.distributed as dist
    dist.initialize()
    r = funcgrad.process_index()
    dist.all_reduce(np.ones(3))                       # both ranks get here
    if r == 1:
        time.sleep(0.2)
        if sys.argv[1:] == ["exit"]:
            sys.exit("boom on rank 1 (sys.exit)")
        raise RuntimeError("boom on rank 1")
    dist.all_reduce(np.ones(3))                       # rank 0 waits here for rank 1
    time.sleep(60)
    print("rank 0 was never stopped")


if __name__ == "__main__":
    main()
