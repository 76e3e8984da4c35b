"""Next-pair latency while the pool keeps changing, with the rebuild on the request path
(``background_rebuild=False``: the first request after a change rebuilds the pool snapshot and
the policy while holding the Collector lock) and off it (the app's setting: the old policy
serves while the new one is built in a thread).

Concurrent annotators answer with a short pause; every ``--every`` seconds the pool version
moves (as an import or a new model version does). Prints p50 / p95 / max per mode from one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from collector.benchmarks.speed.bench_serving import big_pool, pct
from collector.serving.service import Collector
from collector.store import Store
from collector.store.create import init_db


def run_mode(db: Path, background: bool, annotators: int, seconds: float, every: float) -> list[float]:
    store = Store(db)
    collector = Collector(store, seed=0, background_rebuild=background)
    collector.active_policy()  # built once, as at app start
    people = [store.add_annotator(f"{'bg' if background else 'fg'}-{i}")[0]["id"] for i in range(annotators)]
    stop = threading.Event()
    times: list[float] = []
    lock = threading.Lock()

    def annotate(annotator_id: int) -> None:
        while not stop.is_set():
            t = time.perf_counter()
            view = collector.next_pair(annotator_id)
            elapsed = (time.perf_counter() - t) * 1000
            with lock:
                times.append(elapsed)
            collector.submit(annotator_id, view.served_pair_id, "left")
            time.sleep(0.2)

    def change_pool() -> None:
        while not stop.wait(every):
            store.set_meta("pool_version", str(store.pool_version + 1))

    threads = [threading.Thread(target=annotate, args=(a,), daemon=True) for a in people]
    threads.append(threading.Thread(target=change_pool, daemon=True))
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    store.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--responses", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between pool changes")
    parser.add_argument("--switch-intervals", type=float, nargs="+", default=[0.005, 0.0005],
                        help="sys.setswitchinterval values for the off-path mode (Python's default is 0.005 s)")
    args = parser.parse_args()
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
            times = run_mode(db, background, args.annotators, args.seconds, args.every)
            label = "rebuild off the request path" if background else "rebuild on the request path "
            print(f"{label} (GIL switch interval {interval * 1000:g} ms): next pair p50 {statistics.median(times):7.1f} ms  "
                  f"p95 {pct(times, .95):7.1f} ms  max {max(times):7.1f} ms  ({len(times)} requests)", flush=True)
        sys.setswitchinterval(default)


if __name__ == "__main__":
    main()
