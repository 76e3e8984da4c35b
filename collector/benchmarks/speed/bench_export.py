"""Export at scale: wall time and peak memory of `python -m collector export` for every format,
as JSON Lines and as Parquet, on a database of `--labels` labels (built as `bench_dashboard`
builds its 100,000: real servings through the `Collector`, then further servings of them).

Each export runs in its own process; peak RSS is that process's `ru_maxrss`. The process runs
under an address-space limit (`--limit-gb`, default 4) so that an export which would take most
of the machine's memory fails fast and counts as a miss instead of swapping. Target: peak RSS
under 1 GB in every format at every size. Exits 1 when one misses.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from collector.benchmarks.speed.targets import Targets

FORMATS = ("trl", "trl-conversational", "arena", "pairs", "effects")


def run_export(db: Path, fmt: str, out: Path, limit_gb: float) -> tuple[int, float, float]:
    """``(exit code, seconds, peak RSS in MB)`` of one export in a child process."""
    code = ("import resource, subprocess, sys, time; "
            f"limit = int({limit_gb} * 2**30); "
            "t = time.perf_counter(); "
            f"r = subprocess.run([sys.executable, '-m', 'collector', 'export', '--format', {fmt!r}, '--out', "
            f"{str(out)!r}, '--db', {str(db)!r}], capture_output=True, text=True, "
            "preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))); "
            "print(r.returncode, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
            "sys.stderr.write(r.stderr[-300:])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rc, seconds, kb = done.stdout.split()
    if int(rc):
        print(f"    failed: {done.stderr.strip()[-300:]}", flush=True)
    return int(rc), float(seconds), float(kb) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--limit-gb", type=float, default=4.0, help="address-space limit of each export (GB)")
    args = parser.parse_args()
    from collector.benchmarks.speed.bench_dashboard import build_database

    targets = Targets("export")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.labels:
            db = Path(tmp) / f"export-{n}.db"
            started = time.perf_counter()
            counts = build_database(db, labels=n)
            print(f"{counts['labels']:,} labels ({counts['served_pairs']:,} served pairs) built in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            for fmt in args.formats:
                for ext in ("jsonl", "parquet"):
                    out = Path(tmp) / f"out-{n}-{fmt}.{ext}"
                    rc, seconds, rss = run_export(db, fmt, out, args.limit_gb)
                    size = out.stat().st_size / 1e6 if out.exists() else 0.0
                    print(f"{n:,} labels, {fmt} {ext}: exit {rc}, {seconds:.1f} s, peak RSS {rss:,.0f} MB, "
                          f"file {size:,.0f} MB", flush=True)
                    if rc:  # over the address-space limit: a miss, whatever RSS it reached
                        rss = max(rss, args.limit_gb * 1024)
                    targets.at_most(f"{n:,} labels, {fmt} {ext}: peak RSS", rss, 1024, "MB")
                    out.unlink(missing_ok=True)
                    Path(str(out) + ".card.md").unlink(missing_ok=True)
            db.unlink()
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
