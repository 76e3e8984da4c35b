"""The planner checked through the product's own path: `deconfound plan` for the labels an AMCE
needs at 80% power, then `simulate` at that size many times, each a fresh study on the demo
pool, and the share of studies whose 95% CI excludes 0 (the realised power).

1. A pilot (``--pilot`` simulated labels, 20,000 by 100 annotators by default, a true effect on
   ``--attribute`` of ``--utility`` quality points) gives the true AMCE on the design
   (``true_left_outcome``: no label noise) and the study's ties, skips and the attribute's share
   of labels. The pilot is large because the true AMCE on a realised design moves with the pairs
   that happened to be served (choices are Bradley-Terry in quality, so an attribute's effect on
   the choice depends on the quality gap): on 3,000 labels it came out at 0.095, on 6,000 at 0.082.
2. ``collector.jobs.plan`` asks for the labels that detect that AMCE at 80% power with
   ``--annotators`` annotators.
3. ``--replications`` studies of that size, each from a fresh copy of the demo database with
   its own seed, are labelled by ``simulate`` through the serving path and estimated by
   ``acquisition.effects.amce``.

Target (issue 27): realised power 75-85%. Exits 1 when it misses. About 2 s a study here.
"""

from __future__ import annotations

import argparse
import math
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from acquisition.effects import amce
from collector.benchmarks.speed.targets import Targets
from collector.io.frames import pairs_frame
from collector.jobs.plan import plan
from collector.jobs.simulate import SimulatedAnnotatorConfig, simulate, true_left_outcome
from collector.store import Store
from collector.store.create import init_db


def fresh(template: Path, path: Path) -> Store:
    src, dst = sqlite3.connect(template), sqlite3.connect(path)
    src.backup(dst)
    src.close()
    dst.close()
    return Store(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attribute", default="bold")
    parser.add_argument("--utility", type=float, default=1.0, help="the simulated true effect, in quality points")
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--replications", type=int, default=200)
    parser.add_argument("--pilot", type=int, default=20_000, help="labels of the pilot that gives the true AMCE")
    args = parser.parse_args()
    config = SimulatedAnnotatorConfig(attribute_effects={args.attribute: args.utility})
    targets = Targets("plan-check")
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template.db"
        init_db(template, demo=True)
        pilot = fresh(template, Path(tmp) / "pilot.db")
        simulate(pilot, labels=args.pilot, annotators=100, seed=10_000, config=config)
        pairs = pairs_frame(pilot)
        pairs["true_left"] = true_left_outcome(pilot, pairs, config)
        truth = float(amce(pairs, attributes=[args.attribute], left_outcome="true_left").iloc[0]["estimate"])
        row = plan(pilot, effect=truth, attributes=[args.attribute], annotators=args.annotators).iloc[0]
        pilot.close()
        n = int(row["labels_needed"])
        print(f"pilot: true AMCE of {args.attribute} {truth:.4f}; the plan asks for {n:,} labels from "
              f"{args.annotators} annotators for 80% power (share {row['randomised_share']:.3f}, ties "
              f"{row['tie_rate']:.3f}, ICC {row['icc']:.4f})", flush=True)
        hits, started = 0, time.perf_counter()
        for r in range(args.replications):
            path = Path(tmp) / f"study-{r}.db"
            store = fresh(template, path)
            simulate(store, labels=n, annotators=args.annotators, seed=r, config=config)
            est = amce(pairs_frame(store), attributes=[args.attribute]).iloc[0]
            store.close()
            path.unlink()
            hits += bool(est["ci_low"] > 0 or est["ci_high"] < 0)
            if (r + 1) % 25 == 0:
                print(f"  {r + 1} studies: realised power {hits / (r + 1):.3f} "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
    power = hits / args.replications
    half = 1.96 * math.sqrt(power * (1 - power) / args.replications)
    print(f"realised power {power:.3f} (95% interval {power - half:.3f}-{power + half:.3f}) over "
          f"{args.replications} studies of {n:,} labels; planned 0.80")
    targets.at_least("realised power at the planned size", power, 0.75, "share")
    targets.at_most("realised power at the planned size", power, 0.85, "share")
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
