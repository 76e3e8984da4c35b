"""The server process's settings: the GIL switch interval and glibc's allocator.

A server at a million responses swaps in a new policy every time the model or the pool moves
(every 10 s under load), and each build allocates and frees some hundreds of MB of arrays. With
glibc's defaults that memory stayed with the process: its mmap threshold rises to the largest
block freed (up to 32 MB), so later arrays come from per-thread arenas that fifty request threads
multiply, and freed arena memory is not returned. `bench_scale` at 1M responses with 50
annotators grew from 0.4 to 2.1 GB in 150 s; with a reference cycle in ``PoolSnapshot`` gone, the
threshold fixed and free pages returned after each swap, it stays near 0.2-0.3 GB
(docs/benchmarks.md). Elsewhere (no glibc) the allocator calls do nothing and say so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

SWITCH_INTERVAL_S = 0.0005
# blocks of 1 MiB and more (a policy's arrays at 100k responses and up) are mapped and returned on
# free; setting it at all stops glibc raising it. Smaller blocks (Streamlit's own) stay on the heap:
# with glibc's 128 KiB and two arenas, as first tried, the annotator page's first paint went from
# 1.46x to 1.62x the bare page (one make bench run each)
MMAP_THRESHOLD = 1024 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter, from glibc's malloc.h


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def configure_server_process() -> bool:
    """Set the server process up as the app runs it: a 0.5 ms GIL switch interval (a request gets
    back in sooner beside a build thread) and a fixed mmap threshold. Returns whether the
    allocator setting took (glibc only)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def release_free_memory() -> bool:
    """Hand the allocator's free pages back to the system (``malloc_trim``; 3-16 ms at a million
    responses, without the GIL): called after a policy swap. Returns whether anything was
    released (always ``False`` without glibc)."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
