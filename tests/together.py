"""Run a piece of work on several threads released at the same moment (for the concurrency tests)."""

from __future__ import annotations

import threading


def together(n: int, work) -> list:
    """``work(i)`` for i in 0..n-1 on ``n`` threads released together; their results in order
    (the first failure re-raised)."""
    barrier, out, errors = threading.Barrier(n), [None] * n, []

    def run(i: int) -> None:
        try:
            barrier.wait()
            out[i] = work(i)
        except BaseException as e:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out
