"""Matrix products on the calling thread only, for the dispatch pass.

numpy's OpenBLAS starts one thread per core for a product. Ranking a pool does thousands of small
ones per batch (each interest's vector against every paper vector), and handing each to helper
threads that then spin waiting for the next costs far more CPU than the product: on the busy 2-core
machine, 5,000 x 384 float32 times a vector took 6.6 ms of CPU with the default 2 threads against
0.1 ms on one, and a semantic pass of 1,000 subscriptions over 5,000 papers went from 27.7 to 10.4 ms
of CPU a digest (bench/pool_rank_bench.py --semantic). The helper threads' CPU was also invisible to
the match stage's figure (the calling thread's time), so it showed up as delivery. Workers already
run one process per core: one thread each is the right split.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread"]

_CONTROLLER: ThreadpoolController | None = None


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS limited to one thread inside the block (restored after it)."""
    global _CONTROLLER
    if _CONTROLLER is None:  # built on first use, once numpy's BLAS is loaded
        _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=1, user_api="blas"):
        yield
