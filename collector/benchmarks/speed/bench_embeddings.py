"""Embedding throughput of models.embeddings on short sentences and on chat-length responses.

Prints texts/s for `n` one-line sentences and `n` chat responses (~160 characters) embedded with a
fresh in-memory cache (model already loaded), then the time to embed the same texts again from a
warm cache, in memory and in an SQLite file. One line per figure. Targets, the model's own
rates on two cores: 150 one-line sentences/s and 50 chat responses/s from a cold cache; the
SQLite cache returns 300 texts within 100 ms.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from collector.benchmarks.speed.targets import Targets
from models.embeddings import Embedder

SUBJECTS = ["The old fisherman", "A young engineer", "My neighbour", "The committee", "Our cat",
            "The new intern", "A travelling musician", "The city council", "Her grandmother", "The robot"]
VERBS = ["repaired", "painted", "questioned", "ignored", "celebrated", "measured", "borrowed",
         "described", "photographed", "rebuilt"]
OBJECTS = ["the wooden bridge", "a broken bicycle", "the annual budget", "an ancient map",
           "the garden fence", "a noisy printer", "the school library", "a red umbrella"]
PLACES = ["before dawn", "in the rain", "after lunch", "near the harbour", "without asking",
          "during the storm", "at the market", "on Sunday"]
CHAT = [
    "Sure, here is a quick overview of {t}.", "Great question about {t}!",
    "The short answer is that {t} depends on your goals.", "In most cases {t} works best when kept simple.",
    "A common mistake with {t} is skipping the basics.", "I'd start by reading the documentation on {t}.",
    "You can test {t} on a small example first.", "Keep in mind that {t} can change over time.",
    "Many people find {t} easier with a checklist.", "Let me know if you want more detail on {t}.",
]
TOPICS = ["sourdough baking", "Python decorators", "marathon training", "tax deductions", "houseplants",
          "SQL indexes", "learning Spanish", "budget travel", "home networking", "watercolour painting"]


def one_liners(n: int, rng: random.Random) -> list[str]:
    """`n` distinct one-line sentences of about 50 characters."""
    out: set[str] = set()
    while len(out) < n:
        out.add(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(PLACES)}.")
    return sorted(out, key=lambda _: rng.random())


def chat_responses(n: int, rng: random.Random, target: int = 160) -> list[str]:
    """`n` distinct chat-style responses of about `target` characters, built from sentence templates."""
    out: set[str] = set()
    while len(out) < n:
        topic, parts = rng.choice(TOPICS), list[str]()
        while sum(len(p) + 1 for p in parts) < target - 30:
            parts.append(rng.choice(CHAT).format(t=topic))
        out.add(" ".join(parts))
    return sorted(out, key=lambda _: rng.random())


def timed(embedder: Embedder, texts: list[str]) -> float:
    """Seconds taken by one `embed` call."""
    start = time.perf_counter()
    embedder.embed(texts)
    return time.perf_counter() - start


def backends(n: int, data: str, batch_size: int, targets: Targets) -> None:
    """texts/s of each back-end on HH-RLHF responses, and the cosine of each to torch's vectors.
    Targets: ONNX fp32 within 0.999 cosine of torch, int8 within 0.98 on average, and int8 no
    slower than torch (else it has no reason to exist)."""
    import numpy as np

    from collector.io.importers import parse_file
    from models.embeddings import BACKENDS

    texts = list(dict.fromkeys(t for p in parse_file(data).preferences for t in (p.chosen, p.rejected) if t.strip()))[:n]
    mean_chars = sum(map(len, texts)) / len(texts)
    vectors, rates = {}, {}
    for backend in BACKENDS:
        emb = Embedder(batch_size=batch_size, backend=backend)
        emb.embed(["load the model (and export it on first use) outside the timing"])
        seconds = timed(emb, texts)
        vectors[backend] = emb.embed(texts)
        rates[backend] = len(texts) / seconds
        line = f"{backend}: {len(texts) / seconds:.1f} texts/s on {len(texts)} HH-RLHF responses (mean {mean_chars:.0f} chars)"
        if backend != "torch":
            cos = np.sum(vectors[backend] * vectors["torch"], axis=1)
            line += f", cosine to torch mean {cos.mean():.6f} min {cos.min():.6f}"
            targets.at_least(f"{backend}: mean cosine to torch", float(cos.mean()),
                             0.999 if backend == "onnx" else 0.98, "cosine")
        print(line, flush=True)
    if "onnx_int8" in rates:
        targets.at_least("onnx_int8 speed against torch", rates["onnx_int8"] / rates["torch"], 1.0, "x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="texts per set")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backends", action="store_true", help="compare torch, onnx and onnx_int8 on HH-RLHF")
    parser.add_argument("--data", default="../shared/data/hh-rlhf/harmless-base-sample.jsonl.gz")
    args = parser.parse_args()
    if args.backends:
        targets = Targets("embeddings-backends")
        if not Path(args.data).is_file():  # a missing data file is a failed run, not a skipped one
            print(f"--data {args.data}: no such file (the HH-RLHF sample in ../shared/, or give --data)")
            return targets.finish()
        backends(args.n, args.data, args.batch_size, targets)
        return targets.finish()
    targets = Targets("embeddings")
    rng = random.Random(0)
    sets = {"one-line sentences": one_liners(args.n, rng), "chat responses": chat_responses(args.n, rng)}

    start = time.perf_counter()
    Embedder(batch_size=args.batch_size, device=args.device).embed(["warm-up"])
    print(f"model load + first text: {time.perf_counter() - start:.2f} s")

    for name, texts in sets.items():
        mean_chars = sum(map(len, texts)) / len(texts)
        emb = Embedder(batch_size=args.batch_size, device=args.device)
        emb.embed(["load the model outside the timing"])
        cold = timed(emb, texts)
        print(f"{name} (n={len(texts)}, mean {mean_chars:.0f} chars), cold cache: "
              f"{len(texts) / cold:.0f} texts/s ({cold:.2f} s)")
        targets.at_least(f"{name}: cold-cache throughput", len(texts) / cold,
                         150 if name == "one-line sentences" else 50, "texts/s")
        warm = timed(emb, texts)
        print(f"{name}, warm in-memory cache: {warm * 1000:.1f} ms for {len(texts)} texts")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "emb.sqlite"
            Embedder(cache_path=path).embed(texts)
            disk = Embedder(cache_path=path)
            warm_disk = timed(disk, texts)
            assert disk.cache_misses == 0
            print(f"{name}, warm SQLite cache (new instance): {warm_disk * 1000:.1f} ms for {len(texts)} texts")
            targets.at_most(f"{name}: {len(texts)} texts from the SQLite cache", warm_disk * 1000, 100, "ms")
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
