"""Server-side time to produce the next pair and to submit a label, on a 10,000-response pool.

Targets (issue 2): next-pair p95 under 50 ms (100 ms for ``active``), submit p95 under 20 ms;
exits 1 when one misses (``targets``). Prints medians and p95s
from one run on a file database in WAL mode, as the app uses it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from acquisition import EXAMPLES
from acquisition.core.config import to_dict
from acquisition.policies import POLICIES, load_policy_file
from collector.benchmarks.speed.targets import Targets
from collector.serving.service import Collector
from collector.store import Store
from collector.store.create import load_demo_pool


def big_pool(n_responses: int) -> list[dict]:
    """Demo texts, made unique per prompt, repeated until the pool has ``n_responses`` responses."""
    demo = load_demo_pool()
    records, count, i = [], 0, 0
    while count < n_responses:
        rec = demo[i % len(demo)]
        records.append({
            "prompt": f"{rec['prompt']} (variant {i})", "task_type": rec["task_type"],
            "responses": [{**r, "text": f"{r['text']} Variant {i}."} for r in rec["responses"]],
        })
        count += len(rec["responses"])
        i += 1
    return records


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def annotator_latencies(collector: Collector, annotator_id: int, pairs: int) -> list[float]:
    """Milliseconds for each of ``pairs`` next-pair requests by one annotator who answers each
    at once, with a short pause between answers (annotators are not a tight loop)."""
    times = []
    for _ in range(pairs):
        t = time.perf_counter()
        view = collector.next_pair(annotator_id)
        times.append((time.perf_counter() - t) * 1000)
        collector.submit(annotator_id, view.served_pair_id, "left")
        time.sleep(0.005)
    return times


def latencies_idle_and_busy(collector: Collector, annotator_id: int, pairs: int,
                            work: Callable[[], object]) -> tuple[list[float], list[float], int]:
    """``annotator_latencies`` alone, then while ``work()`` runs over and over in a thread of the
    same process; returns ``(idle, busy, times work ran)``."""
    idle = annotator_latencies(collector, annotator_id, pairs)
    stop, runs = threading.Event(), []

    def loop() -> None:
        while not stop.is_set():
            work()
            runs.append(1)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    time.sleep(1.0)
    busy = annotator_latencies(collector, annotator_id, pairs)
    stop.set()
    worker.join()
    return idle, busy, len(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--responses", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=300)
    args = parser.parse_args()
    targets = Targets("serving")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        t0 = time.perf_counter()
        store.add_pool(big_pool(args.responses), source="bench")
        print(f"pool: {store.counts()['base_responses']} responses loaded in {time.perf_counter() - t0:.1f} s")
        annotator, _ = store.add_annotator("bench")
        examples = EXAMPLES
        for name in sorted(POLICIES):
            _, config = load_policy_file(str(examples / f"{name}.toml"))
            store.activate_policy(name, to_dict(config))
            collector = Collector(store, seed=0)
            collector.active_policy()  # build the pool snapshot once, as the app does at start
            next_ms, submit_ms = [], []
            for _ in range(args.pairs):
                t = time.perf_counter()
                view = collector.next_pair(annotator["id"])
                next_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                collector.submit(annotator["id"], view.served_pair_id, "left")
                submit_ms.append((time.perf_counter() - t) * 1000)
            print(f"{name:24s} next pair: median {statistics.median(next_ms):6.2f} ms  p95 {pct(next_ms, .95):6.2f} ms"
                  f"   submit: median {statistics.median(submit_ms):6.2f} ms  p95 {pct(submit_ms, .95):6.2f} ms")
            targets.at_most(f"{name} next pair p95", pct(next_ms, .95), 100 if name == "active" else 50, "ms")
            targets.at_most(f"{name} submit p95", pct(submit_ms, .95), 20, "ms")
        durability_cost(store, annotator["id"], args.pairs)
        store.close()
    return targets.finish()


def durability_cost(store: Store, annotator_id: int, pairs: int) -> None:
    """What ``synchronous = FULL`` (a label survives power loss) costs against SQLite's
    ``NORMAL`` (the last commits may be lost): next pair + submit, alternating blocks of 20."""
    collector = Collector(store, seed=1)
    times: dict[str, list[float]] = {"FULL": [], "NORMAL": []}
    for block in range(max(2, pairs // 20)):
        mode = "FULL" if block % 2 == 0 else "NORMAL"
        store.db.execute(f"PRAGMA synchronous = {mode}")
        for _ in range(20):
            t = time.perf_counter()
            view = collector.next_pair(annotator_id)
            collector.submit(annotator_id, view.served_pair_id, "left")
            times[mode].append((time.perf_counter() - t) * 1000)
    store.db.execute("PRAGMA synchronous = FULL")
    full, normal = (statistics.median(times[m]) for m in ("FULL", "NORMAL"))
    print(f"durability: serve+submit median {full:.2f} ms with synchronous=FULL, {normal:.2f} ms with NORMAL "
          f"(x{full / normal:.2f}; p95 {pct(times['FULL'], .95):.2f} vs {pct(times['NORMAL'], .95):.2f} ms, "
          f"{len(times['FULL'])} answers each)")


if __name__ == "__main__":
    sys.exit(main())
