"""Next-pair latency while the pool keeps changing, with the rebuild on the request path
(``background_rebuild=False``: the first request after a change rebuilds the pool snapshot and
the policy while holding the Collector lock) and off it (the app's setting: the old policy
serves while the new one is built in a thread).

Concurrent annotators answer with a short pause (``PAUSE_S``); they arrive spread over one pause,
as ``bench_scale``'s do, rather than all in the same millisecond (fifty first requests at once
queue behind the admission limit whatever the pool does: a burst, not a rebuild). Every
``--every`` seconds 25 prompts (100 responses) are imported, so the pool grows and its version
moves. Prints p50 / p95 / max per mode from one run, and the same for the requests that began while
a rebuild was in flight (what this benchmark is for). Targets, off the request path: p95 <= 50 ms,
max <= 250 ms over every request; in every mode the policy must have been rebuilt on the grown pool
(else nothing was measured).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from collector.benchmarks.speed.bench_serving import big_pool, pct
from collector.benchmarks.speed.targets import Targets
from collector.serving.memory import configure_server_process
from collector.serving.service import Collector
from collector.store import Store
from collector.store.create import init_db

PAUSE_S = 0.2  # an annotator's pause between an answer and the next request


def run_mode(db: Path, background: bool, annotators: int, seconds: float,
             every: float, name: str) -> tuple[list[float], list[float], int, tuple[int, int]]:
    """Next-pair milliseconds (all, and those of requests begun while a rebuild was in flight),
    the policy builds after the first, and the pool's responses served at the start and at the
    end (a run where the pool did not grow measured nothing). ``name``
    sets this mode's annotators and imported prompts apart from another mode's (the same texts
    again would be duplicates, and the pool would not grow)."""
    store = Store(db)
    collector = Collector(store, seed=0, background_rebuild=background)
    builds: list[list[float]] = []  # [start, end] of each build, perf_counter seconds
    real_build = collector._build

    def counted_build(*args: Any, **kwargs: Any) -> Any:
        window = [time.perf_counter(), float("inf")]
        builds.append(window)
        try:
            return real_build(*args, **kwargs)
        finally:
            window[1] = time.perf_counter()

    collector._build = counted_build  # type: ignore[method-assign]
    policy, _ = collector.active_policy()  # built once, as at app start
    first = policy.pool.n_responses
    people = [store.add_annotator(f"{name}-{i}")[0]["id"] for i in range(annotators)]
    stop = threading.Event()
    times: list[tuple[float, float]] = []  # (start, milliseconds)
    lock = threading.Lock()

    def annotate(k: int, annotator_id: int) -> None:
        time.sleep(PAUSE_S * k / annotators)  # arrivals spread over one pause
        while not stop.is_set():
            t = time.perf_counter()
            view = collector.next_pair(annotator_id)
            elapsed = (time.perf_counter() - t) * 1000
            with lock:
                times.append((t, elapsed))
            collector.submit(annotator_id, view.served_pair_id, "left")
            time.sleep(PAUSE_S)

    def change_pool() -> None:  # an import of 25 prompts (100 responses): new rows, a new pool version
        tick = 0
        while not stop.wait(every):
            tick += 1
            store.add_pool([{"prompt": f"new prompt {tick}-{i} ({name})",
                             "task_type": "general",
                             "responses": [{"text": f"new response {tick}-{i}-{k}"} for k in range(4)]}
                            for i in range(25)], source="bench-growth")

    threads = [threading.Thread(target=annotate, args=(k, a), daemon=True) for k, a in enumerate(people)]
    threads.append(threading.Thread(target=change_pool, daemon=True))
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    last = collector.active_policy()[0].pool.n_responses
    collector.wait_for_rebuild()
    store.close()
    rebuilds = builds[1:]
    during = [ms for t, ms in times if any(a <= t <= b for a, b in rebuilds)]
    return [ms for _, ms in times], during, len(rebuilds), (first, last)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--responses", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between pool changes")
    parser.add_argument("--switch-intervals", type=float, nargs="+", default=[0.005, 0.0005],
                        help="sys.setswitchinterval values for the off-path mode (Python's default is 0.005 s)")
    args = parser.parse_args()
    targets = Targets("rebuild")
    configure_server_process()  # as app.py; each mode then sets its own switch interval
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        init_db(db)
        store = Store(db)
        t0 = time.perf_counter()
        store.add_pool(big_pool(args.responses), source="bench")
        print(f"pool: {store.counts()['base_responses']} responses in {time.perf_counter() - t0:.1f} s; "
              f"{args.annotators} annotators, pool changes every {args.every:g} s, {args.seconds:g} s per mode")
        store.close()
        default = sys.getswitchinterval()
        for background, interval in [(False, default), *((True, i) for i in args.switch_intervals)]:
            sys.setswitchinterval(interval)
            times, during, rebuilds, (first, last) = run_mode(db, background, args.annotators, args.seconds, args.every,
                                                      f"{'bg' if background else 'fg'}-{interval * 1000:g}ms")
            label = "rebuild off the request path" if background else "rebuild on the request path "
            print(f"{label} (GIL switch interval {interval * 1000:g} ms): next pair p50 {statistics.median(times):7.1f} ms  "
                  f"p95 {pct(times, .95):7.1f} ms  max {max(times):7.1f} ms  ({len(times)} requests; "
                  f"{rebuilds} rebuilds; pool {first:,} -> {last:,} responses)", flush=True)
            if during:
                print(f"    {len(during)} requests began during a rebuild: p50 {statistics.median(during):.1f} ms  "
                      f"p95 {pct(during, .95):.1f} ms  max {max(during):.1f} ms", flush=True)
            mode = f"{'off' if background else 'on'} path, switch {interval * 1000:g} ms"
            targets.happened(f"{mode}: rebuilds on a growing pool", rebuilds if last > first else 0, "rebuilds")
            if background:  # the app's setting; on the request path is the baseline it replaced
                targets.at_most(f"{mode}: next pair p95", pct(times, .95), 50, "ms")
                targets.at_most(f"{mode}: next pair max", max(times), 250, "ms")
        sys.setswitchinterval(default)
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
