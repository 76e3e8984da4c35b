"""Import at scale: wall time and peak memory of `python -m collector import` on a generated
JSON Lines file of `--pairs` HH-RLHF-shaped pairs (gzipped), streamed against the whole-file
parser (`DECONFOUND_IMPORT_STREAM=0`). Each import runs in its own process with `--no-embed`;
peak RSS is that process's `ru_maxrss`. One line per figure. Target: the streamed import's
peak RSS under 1 GB at every size."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from collector.benchmarks.speed.targets import Targets

WORDS = ("the of and to in is you that it he was for on are as with his they at be this have from or one had by "
         "word but not what all were we when your can said there use an each which she do how their if will up "
         "other about out many then them these so some her would make like him into time has look two more").split()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def write_file(path: Path, pairs: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as f:
        for i in range(pairs):
            human = f"Human: {sentence(rng, 12)} (question {i})"
            chosen = " ".join(sentence(rng, rng.randint(8, 20)) for _ in range(rng.randint(2, 6)))
            rejected = " ".join(sentence(rng, rng.randint(8, 20)) for _ in range(rng.randint(2, 6)))
            f.write(json.dumps({"chosen": f"\n\n{human}\n\nAssistant: {chosen}",
                                "rejected": f"\n\n{human}\n\nAssistant: {rejected}"}) + "\n")


def run_import(path: Path, db: Path, stream: bool) -> tuple[float, float]:
    env = {**os.environ, "DECONFOUND_IMPORT_STREAM": "1" if stream else "0"}
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            f"r = subprocess.run([sys.executable, '-m', 'collector', 'import', {str(path)!r}, '--db', {str(db)!r}, "
            "'--no-embed'], capture_output=True, text=True); "
            "assert r.returncode == 0, r.stderr[-2000:]; "
            "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1]) / 1024  # seconds, MB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[100_000])
    args = parser.parse_args()
    targets = Targets("import")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.pairs:
            path = Path(tmp) / f"pairs-{n}.jsonl.gz"
            started = time.perf_counter()
            write_file(path, n)
            print(f"{n:,} pairs: file {path.stat().st_size / 1e6:.0f} MB gzipped, written in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            for stream in (True, False):
                db = Path(tmp) / f"db-{n}-{stream}.sqlite"
                subprocess.run([sys.executable, "-m", "collector", "init", "--db", str(db)],
                               check=True, capture_output=True)
                wall, rss = run_import(path, db, stream)
                print(f"{n:,} pairs, {'streamed' if stream else 'whole file'}: {wall:.1f} s wall, "
                      f"peak RSS {rss:,.0f} MB", flush=True)
                if stream:  # the product's path; the whole-file parser is the baseline
                    targets.at_most(f"{n:,} pairs streamed: peak RSS", rss, 1024, "MB")
                db.unlink()
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
