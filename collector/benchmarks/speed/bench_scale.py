"""Next pair at 100,000 and 1,000,000 responses with 50 concurrent annotators while the model
is retrained every 10 s and the pool grows (the scale issue's benchmark).

One server process (this one, the app's ``Collector`` with ``background_rebuild``) serves the
``active`` policy; a second process plays the worker: every ``--every`` seconds it retrains
``bt_mlp`` on 10,000 labels with one torch thread (the app's setting; cached-embedding sized
inputs), publishes a model version with acquisition scores for every base pair of the pool,
and imports 25 new prompts (100 responses), so both the live model and the pool move.
Annotators are threads that read each pair for ``--think`` seconds (1 s, and 0.2 s as an
overload: real annotators read for 10 s or more), answer it and ask for the next.

Prints per size: next-pair p50 / p95 / max, requests served, how many model versions and pool
versions the served pairs came from (a run where nothing was swapped in measures nothing),
the retrain times, and the server's RSS. A last run is the stall check: 20 annotators each asking
for a pair every 50 ms at the first size. Targets: p95 <= 50 ms, max <= 250 ms, no request error,
the server's RSS at most 200 MB above where it was after the first policy build, retraining under
5 s, and (unless ``--still``) at least one retrain and one new model version that served pairs;
exits 1 when one misses.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from acquisition.core.config import to_dict
from acquisition.policies.active import ActiveConfig, base_pairs
from collector.benchmarks.speed.bench_serving import big_pool, pct
from collector.benchmarks.speed.targets import Targets
from collector.jobs.worker import THREAD_ENV, WORKER_NICE
from collector.serving.memory import configure_server_process
from collector.serving.service import Collector
from collector.store import Store
from collector.store.create import init_db


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mover(db: str, every: float, ticks: int) -> None:
    """The worker's part, in its own process: retrain, publish scores, grow the pool."""
    import torch

    from collector.benchmarks.speed.bench_training import random_pairs
    from models.reward import ModelConfig, build_model
    from models.training import load_optimiser

    torch.set_num_threads(1)
    load_optimiser()  # as the worker does when it starts
    store = Store(db)
    checkpoints = store.checkpoints()
    rng = np.random.default_rng(1)
    data = random_pairs(10_000)
    n_prompts = store.counts()["prompts"]
    for tick in range(ticks):
        t_start = time.perf_counter()
        model = build_model("bt_mlp", ModelConfig(), 384, ["default"])
        t = time.perf_counter()
        model.fit(data)
        retrain = time.perf_counter() - t
        pool = store.pool_snapshot(lazy_texts=True)
        prompt, low, high, _ = base_pairs(pool)
        pairs = np.stack([prompt, low, high], axis=1)
        version = checkpoints.publish({}, {}, {}, pairs, rng.random(len(pairs)),  # type: ignore[arg-type]
                                      live=store.get_meta("model_version"),
                                      commit=lambda v: store.set_meta("model_version", v))
        records = [{"prompt": f"new prompt {tick}-{i} #{n_prompts}", "task_type": "general",
                    "responses": [{"text": f"new response {tick}-{i}-{k}"} for k in range(4)]} for i in range(25)]
        store.add_pool(records, source="bench-growth")
        print(json.dumps({"tick": tick, "retrain_s": round(retrain, 2), "model_version": version,
                          "pool_version": store.pool_version, "pairs_scored": len(pairs)}), flush=True)
        time.sleep(max(0.0, every - (time.perf_counter() - t_start)))
    store.close()


def run_size(n_responses: int, annotators: int, seconds: float, every: float, move: bool = True,
             think: float = 1.0) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "scale.db"
        init_db(db)
        store = Store(db)
        t0 = time.perf_counter()
        batch: list[dict] = []
        for record in big_pool(n_responses):
            batch.append(record)
            if len(batch) == 20_000:
                store.add_pool(batch, source="bench")
                batch = []
        if batch:
            store.add_pool(batch, source="bench")
        store.activate_policy("active", to_dict(ActiveConfig(design_acquisition="none")))
        built = time.perf_counter() - t0
        rss_before = rss_mb()
        collector = Collector(store, seed=0, background_rebuild=True)
        t = time.perf_counter()
        collector.active_policy()  # the first build, as at app start
        first_build = time.perf_counter() - t
        people = [store.add_annotator(f"a{i}")[0]["id"] for i in range(annotators)]
        ticks = int(seconds // every) + 1
        worker = subprocess.Popen([sys.executable, "-m", "collector.benchmarks.speed.bench_scale", "--mover", str(db),
                                   "--every", str(every), "--ticks", str(ticks if move else 0)],
                                  stdout=subprocess.PIPE, text=True, env={**os.environ, **THREAD_ENV},
                                  preexec_fn=lambda: os.nice(WORKER_NICE))  # noqa: PLW1509 - as spawn_worker
        stop = threading.Event()
        times: list[float] = []
        lock = threading.Lock()
        errors: list[str] = []

        def annotate(annotator_id: int) -> None:
            time.sleep(think * (annotator_id % annotators) / annotators)  # arrivals spread over a reading time
            while not stop.is_set():
                t = time.perf_counter()
                try:
                    view = collector.next_pair(annotator_id)
                except Exception as exc:  # noqa: BLE001 - counted and printed, not hidden
                    errors.append(repr(exc))
                    time.sleep(0.2)
                    continue
                elapsed = (time.perf_counter() - t) * 1000
                with lock:
                    times.append(elapsed)
                time.sleep(think)  # reading the pair
                try:
                    collector.submit(annotator_id, view.served_pair_id, "left")
                except Exception as exc:  # noqa: BLE001 - a lost answer is an error, and the annotator goes on
                    errors.append(f"submit: {exc!r}")

        threads = [threading.Thread(target=annotate, args=(a,), daemon=True) for a in people]
        for th in threads:
            th.start()
        time.sleep(seconds)
        stop.set()
        for th in threads:
            th.join(timeout=30)
        worker.terminate()
        out, _ = worker.communicate(timeout=60)
        ticks_done = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        versions = store._tuples("SELECT count(DISTINCT model_version), count(DISTINCT policy_version) FROM served_pairs")
        rss_after = rss_mb()
        collector.wait_for_rebuild()  # a build in flight needs the store open
        store.close()
    return {"responses": n_responses, "built_s": built, "first_build_s": first_build, "times": times,
            "errors": errors, "ticks": ticks_done, "model_versions_served": versions[0][0],
            "rss_before": rss_before, "rss_after": rss_after}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--think", type=float, nargs="+", default=[1.0, 0.2],
                        help="seconds each annotator reads a pair (real ones: 10 s or more); one run per value")
    parser.add_argument("--still", action="store_true", help="no retraining or pool growth (the baseline)")
    parser.add_argument("--no-stall-check", dest="stall_check", action="store_false",
                        help="skip the stall check (20 annotators each asking every 50 ms, at the first size)")
    parser.add_argument("--mover", metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--ticks", type=int, default=10, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mover:
        mover(args.mover, args.every, args.ticks)
        return 0
    targets = Targets("scale")
    configure_server_process()  # as app.py
    load = os.getloadavg()[0]
    print(f"{args.annotators} annotators, model retrained and pool grown every {args.every:g} s, "
          f"{args.seconds:g} s per size; load average {load:.1f} at start", flush=True)
    runs = [(n, args.annotators, think, "") for n, think in itertools.product(args.sizes, args.think)]
    if args.stall_check:  # the held-out stall check: 20 annotators, a request every 50 ms
        runs.append((args.sizes[0], 20, 0.05, "stall check, 20 annotators, "))
    for n, annotators, think, label in runs:
        r = run_size(n, annotators, args.seconds, args.every, move=not args.still, think=think)
        times = r["times"]
        retrains = [t["retrain_s"] for t in r["ticks"]]
        print(f"{label}{n:>9,} responses, {annotators} annotators, {think:g} s reading each pair "
              f"(pool built in {r['built_s']:.0f} s, "
              f"first policy build {r['first_build_s']:.2f} s): "
              f"next pair p50 {statistics.median(times):.1f} ms  p95 {pct(times, .95):.1f} ms  max {max(times):.1f} ms  "
              f"({len(times)} requests, {len(r['errors'])} errors); served from {r['model_versions_served']} model "
              f"versions over {len(r['ticks'])} retrains (bt_mlp on 10,000 labels, 1 thread: "
              f"{', '.join(f'{s:.1f}' for s in retrains)} s); server RSS {r['rss_before']:.0f} -> {r['rss_after']:.0f} MB; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        for e in r["errors"][:3]:
            print("  error:", e)
        row = f"{label}{n:,} responses, {think:g} s reading"
        targets.at_most(f"{row}: next pair p95", pct(times, .95), 50, "ms")
        targets.at_most(f"{row}: next pair max", max(times), 250, "ms")
        targets.at_most(f"{row}: request errors", len(r["errors"]), 0, "errors")
        # a server that keeps what each policy swap freed grows without bound (+0.85 GB in this
        # minute at 1M responses before collector/serving/memory.py)
        targets.at_most(f"{row}: server RSS growth over the run", r["rss_after"] - r["rss_before"], 200, "MB")
        if not args.still:  # the moving run must have swapped models in, or it measured a still server
            targets.happened(f"{row}: retrains", len(retrains), "retrains")
            targets.happened(f"{row}: new model versions that served pairs", r["model_versions_served"] - 1,
                             "swaps")
            targets.at_most(f"{row}: slowest retrain, 10k labels", max(retrains, default=float("nan")), 5, "s")
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
