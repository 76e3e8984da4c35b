"""Reward-model figures for `make bench`:

1. retraining time for 1,000 and 10,000 labels on cached embeddings (target < 5 s at 10,000);
2. the annotator's next-pair p95 while a retrain runs in the app's process (target <= 1.5x idle);
3. bt_mlp on MiniLM embeddings, held-out accuracy on the HH-RLHF sample (mean over seeds, 95% t
   interval; target: its lower end above chance, 0.5). A missing sample is a miss, not a skip.

Exits 1 when a target misses.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from acquisition.core.config import to_dict
from acquisition.policies import RandomisedAttributesConfig
from collector.app import REPOSITORY
from collector.benchmarks import HH_RLHF_SAMPLE
from collector.benchmarks.speed.bench_serving import big_pool, latencies_idle_and_busy, pct
from collector.benchmarks.speed.targets import Targets
from collector.serving.service import Collector
from collector.store import Store
from models.reward import ModelConfig, PairData, build_model, pairwise_accuracy


def random_pairs(n: int, d: int = 384, seed: int = 0) -> PairData:
    rng = np.random.default_rng(seed)
    x = lambda: rng.normal(size=(n, d)).astype(np.float32)  # noqa: E731
    return PairData(x(), x(), x(), (rng.random(n) < 0.5).astype(np.float32), np.zeros(n, np.int64))


def retrain_times(targets: Targets) -> None:
    build_model("bt_mlp", ModelConfig(epochs=1), 384, ["default"]).fit(random_pairs(500))  # warm-up
    for n in (1_000, 10_000):
        model = build_model("bt_mlp", ModelConfig(), 384, ["default"])
        t = time.perf_counter()
        model.fit(random_pairs(n))
        seconds = time.perf_counter() - t
        print(f"retrain bt_mlp on {n:>6,} labels (cached embeddings): {seconds:5.2f} s")
        if n == 10_000:
            targets.at_most("retrain bt_mlp on 10,000 labels", seconds, 5, "s")


def next_pair_during_retrain(targets: Targets, pairs: int = 300) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "b.db")
        store.add_pool(big_pool(10_000), source="bench")
        store.activate_policy("randomised_attributes", to_dict(RandomisedAttributesConfig()))
        annotator, _ = store.add_annotator("bench")
        collector = Collector(store, seed=0)
        collector.active_policy()

        idle, busy, runs = latencies_idle_and_busy(
            collector, annotator["id"], pairs,
            lambda: build_model("bt_mlp", ModelConfig(epochs=2), 384, ["default"]).fit(random_pairs(10_000)))
        store.close()
    print(f"next pair p95 idle {pct(idle, .95):.2f} ms, during retrain {pct(busy, .95):.2f} ms "
          f"(ratio {pct(busy, .95) / pct(idle, .95):.2f}; medians {np.median(idle):.2f} / {np.median(busy):.2f} ms)")
    targets.happened("retrains while the annotator was served", runs, "retrains")
    targets.at_most("next pair p95 during a retrain, against idle", pct(busy, .95) / pct(idle, .95), 1.5, "x")


def split_hh(text: str) -> tuple[str, str]:
    cut = text.rfind("\n\nAssistant: ")
    return text[:cut].strip(), text[cut + len("\n\nAssistant: "):].strip()


def hh_rlhf_accuracy(seeds: int, train_n: int, sample: Path, targets: Targets) -> None:
    from scipy import stats

    from models.embeddings import Embedder

    if not sample.is_file():  # a failed check, not a skipped one
        print(f"--data {sample}: no such file (the HH-RLHF sample in ../shared/, or give --data)")
        targets.happened("HH-RLHF accuracy measured", 0, "runs")
        return
    rows = [json.loads(line) for line in gzip.open(sample, "rt", encoding="utf-8")]
    prompts, chosen, rejected = [], [], []
    for r in rows:
        p, c = split_hh(r["chosen"])
        _, rej = split_hh(r["rejected"])
        prompts.append(p)
        chosen.append(c)
        rejected.append(rej)
    out = REPOSITORY / "data" / "bench"
    out.mkdir(exist_ok=True)
    embedder = Embedder(cache_path=out / "embeddings.sqlite")
    t = time.perf_counter()
    texts = sorted(set(prompts + chosen + rejected))
    vectors = dict(zip(texts, embedder.embed(texts, progress=True)))
    print(f"\nembedded {embedder.cache_misses} new / {len(texts)} unique HH-RLHF texts in {time.perf_counter() - t:.1f} s")
    P = np.stack([vectors[p] for p in prompts])
    C = np.stack([vectors[c] for c in chosen])
    R = np.stack([vectors[r] for r in rejected])
    accs = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        flip = rng.random(len(rows)) < 0.5  # chosen on the left or the right at random
        first, second = np.where(flip[:, None], R, C), np.where(flip[:, None], C, R)
        data = PairData(P, first, second, np.where(flip, 0.0, 1.0).astype(np.float32), np.zeros(len(rows), np.int64))
        order = rng.permutation(len(rows))
        model = build_model("bt_mlp", ModelConfig(), P.shape[1], ["default"])
        model.fit(data.subset(order[:train_n]), seed=seed)
        accs.append(pairwise_accuracy(model, data.subset(order[train_n:])))
    mean = float(np.mean(accs))
    half = float(stats.t.ppf(0.975, len(accs) - 1)) * float(np.std(accs, ddof=1)) / np.sqrt(len(accs))
    print(f"HH-RLHF bt_mlp held-out accuracy over {seeds} seeds ({train_n} train / {len(rows) - train_n} test): "
          f"{mean:.3f} +/- {half:.3f} (95% t interval; per seed: {', '.join(f'{a:.3f}' for a in accs)})")
    targets.at_least("HH-RLHF held-out accuracy, lower end of the 95% interval", mean - half, 0.5, "accuracy")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--data", type=Path, default=HH_RLHF_SAMPLE, help="the HH-RLHF sample (default: ../shared/)")
    args = parser.parse_args()
    targets = Targets("training")
    retrain_times(targets)
    next_pair_during_retrain(targets)
    hh_rlhf_accuracy(args.seeds, args.train, args.data, targets)
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
