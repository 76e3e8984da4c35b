"""The server process's settings: the GIL switch interval and glibc's allocator.

A server at a million responses swaps in a new policy every time the model or the pool moves
(every 10 s under load), and each build allocates and frees some hundreds of MB of arrays. With
glibc's defaults that memory stayed with the process: its mmap threshold rises to the largest
block freed (up to 32 MB), so later arrays come from per-thread arenas that fifty request threads
multiply, and freed arena memory is not returned. `bench_scale` at 1M responses with 50
annotators grew from 0.4 to 2.1 GB in 150 s; with the settings below, and a reference cycle in
``PoolSnapshot`` gone, it stayed at 0.2 GB (docs/benchmarks.md). Elsewhere (no glibc) both calls
do nothing and say so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

SWITCH_INTERVAL_S = 0.0005
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, kept: larger blocks are mapped and returned on free
ARENA_MAX = 2  # one per core here; requests are admitted two at a time (``Collector``)
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # mallopt parameters, from glibc's malloc.h


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
    back in sooner beside a build thread) and a fixed mmap threshold with two malloc arenas.
    Returns whether the allocator settings took (glibc only)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(_M_ARENA_MAX, ARENA_MAX))


def release_free_memory() -> bool:
    """Hand the allocator's free pages back to the system (``malloc_trim``; 3-16 ms at a million
    responses, without the GIL): called after a policy swap. Returns whether anything was
    released (always ``False`` without glibc)."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
