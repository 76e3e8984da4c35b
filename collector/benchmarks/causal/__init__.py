"""The causal benchmark: what interventional collection buys, measured end to end.

``python -m collector benchmark causal`` builds a world (``world.py``: a data source, simulated
annotators, confounding knobs), collects labels under each policy through the product's own
code paths (``engine.py``), trains the registered reward models, and reports ID / OOD accuracy
against an oracle, each randomised attribute's AMCE against the truth, labels-to-target
curves and the two sweeps of Kobalczyk & van der Schaar, *Preference Learning for AI
Alignment: a Causal Perspective* (ICML 2025) (``experiments.py``, ``report.py``).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from collector.benchmarks.causal.world import World, load_world, quick, world_path

DEFAULT_WORLD = "synthetic"
DEFAULT_CACHE = Path("data/cache/benchmark-embeddings.sqlite")


def make_embedder(world: World, cache: Path):
    if world.embedder == "bag_of_words":
        from models.embeddings import BagOfWordsEmbedder

        return BagOfWordsEmbedder()
    from models.embeddings import Embedder

    # writes to the cache every 256 texts, so an interrupted run keeps what it embedded
    embedder = Embedder(cache_path=cache, flush_every=256, max_length=world.embed_max_tokens,
                        model_dir=world.embedder_path or None)
    plain = embedder.embed

    def embed(texts, progress: bool = False, on_progress=None):
        """A progress line whenever a call has more than a few batches to embed."""
        texts = list(texts)
        return plain(texts, progress=progress or len(texts) > 256, on_progress=on_progress)

    embedder.embed = embed  # type: ignore[method-assign]
    return embedder


def configure(world_file: str | None = None, data: str | None = None, seeds: int | None = None,
              labels: int | None = None, quick_run: bool = False, embedder: str | None = None,
              sweeps: bool = True) -> World:
    """The world a CLI invocation describes: the file (a built-in by name, ``synthetic`` by
    default; ``hh_rlhf`` when only ``--data`` is given) with the command-line overrides."""
    world = load_world(world_path(world_file or ("hh_rlhf" if data else DEFAULT_WORLD)))
    if data:
        world = dataclasses.replace(world, source=dataclasses.replace(world.source, kind="file", path=data))
    if quick_run:
        world = quick(world)
    if seeds is not None:
        world = dataclasses.replace(world, seeds=seeds)
    if labels is not None:
        world = dataclasses.replace(world, labels=labels, curve=[n for n in world.curve if n <= labels])
    if embedder is not None:
        world = dataclasses.replace(world, embedder=embedder)
    if not sweeps:
        world = dataclasses.replace(world, sweeps=dataclasses.replace(world.sweeps, rho_latent=[], rho_assignment=[]))
    world.validate("command line")
    return world


def run_causal(world: World, out: Path, cache: Path = DEFAULT_CACHE, workdir: Path | None = None,
               command: str = "") -> dict[str, Any]:
    """Run every experiment of ``world``, print the report, write JSON / HTML / PNG under ``out``;
    the last line printed is the headline JSON object."""
    from collector.benchmarks.causal.experiments import run
    from collector.benchmarks.causal.report import text_report, write_outputs

    started = time.perf_counter()
    embedder = make_embedder(world, cache)
    with tempfile.TemporaryDirectory(prefix="deconfound-bench-") as tmp:
        results = run(world, Path(workdir or tmp), embedder)
    results["command"] = command
    results["total_wall_seconds"] = round(time.perf_counter() - started, 1)
    print(text_report(results))
    written = write_outputs(results, out, stem=f"benchmark-{world.name}")
    for kind, path in written.items():
        print(f"{kind}: {path}")
    print(f"wall time: {results['total_wall_seconds']} s")
    print(json.dumps(results["headline"]))
    return results
