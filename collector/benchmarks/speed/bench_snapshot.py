"""Server memory for the pool at scale: resident memory of a fresh process after the
Collector has built its policy over `--responses` base responses (HH-RLHF-length texts,
~400 characters), with the snapshot holding every text (`eager`) against holding ids and
reading texts on demand (`lazy`, the server's setting), plus the build time and next-pair
latency in that state. Targets (the server's setting, texts on demand): RSS under 500 MB
(the boot target) and next pair p95 under 50 ms at every size. The database is filled with raw inserts (fast; the import path has
its own benchmark). One line per figure."""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from acquisition.core.pool import text_hash
from collector.benchmarks.speed.targets import Targets
from collector.store.create import init_db

WORDS = ("the of and to in is you that it he was for on are as with his they at be this have from or one had by "
         "word but not what all were we when your can said there use an each which she do how their if will up").split()


def fill(db: Path, responses: int, per_prompt: int = 4) -> None:
    init_db(str(db))
    rng = random.Random(0)
    conn = sqlite3.connect(db)
    now = time.time()
    with conn:
        for p in range(responses // per_prompt):
            prompt = f"Human: question {p}: " + " ".join(rng.choice(WORDS) for _ in range(40))
            conn.execute("INSERT INTO prompts (id, text, text_hash, task_type, created_at) VALUES (?, ?, ?, ?, ?)",
                         (p + 1, prompt, text_hash(prompt), "general", now))
            rows = []
            for k in range(per_prompt):
                text = f"Answer {k} to {p}. " + " ".join(rng.choice(WORDS) for _ in range(80))
                rows.append((p + 1, text, text_hash(text), now))
            conn.executemany("INSERT INTO responses (prompt_id, text, text_hash, created_at) VALUES (?, ?, ?, ?)", rows)
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('pool_version', '1')")
    conn.close()


CHILD = r"""
import json, os, statistics, sys, time
from collector.serving.service import Collector
from collector.store import Store

def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

lazy = sys.argv[2] == "lazy"
store = Store(sys.argv[1])
before = rss()
if not lazy:  # the old behaviour: every text in the server's snapshot
    cls = type(store)
    plain = cls.pool_snapshot
    cls.pool_snapshot = lambda self, lazy_texts=False, arrays=None: plain(self, lazy_texts=False, arrays=arrays)
t = time.perf_counter()
collector = Collector(store, seed=0)
collector.active_policy()
build = time.perf_counter() - t
after = rss()
a = store.add_annotator("bench")[0]["id"]
times = []
for _ in range(200):
    t = time.perf_counter()
    view = collector.next_pair(a)
    times.append((time.perf_counter() - t) * 1000)
    collector.submit(a, view.served_pair_id, "left")
times.sort()
print(json.dumps({"rss_before": before, "rss_after": after, "build_s": build,
                  "p50": times[100], "p95": times[190], "max": times[-1]}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    targets = Targets("snapshot")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.responses:
            db = Path(tmp) / f"pool-{n}.sqlite"
            t = time.perf_counter()
            fill(db, n)
            print(f"{n:,} responses: database {db.stat().st_size / 1e6:,.0f} MB, filled in {time.perf_counter() - t:.0f} s",
                  flush=True)
            for mode in ("lazy", "eager"):
                out = subprocess.run([sys.executable, "-c", CHILD, str(db), mode], capture_output=True, text=True,
                                     env={**os.environ, "OMP_NUM_THREADS": "1"})
                if out.returncode:
                    print(f"{n:,} {mode}: failed: {out.stderr[-800:]}", flush=True)
                    targets.happened(f"{n:,} responses, {mode}: the server built its policy", 0, "builds")
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{n:,} responses, {mode} texts: server RSS {r['rss_before']:,.0f} -> {r['rss_after']:,.0f} MB "
                      f"after the policy build ({r['build_s']:.1f} s); next pair p50/p95/max "
                      f"{r['p50']:.1f}/{r['p95']:.1f}/{r['max']:.1f} ms (one annotator, 200 pairs)", flush=True)
                if mode == "lazy":  # the server's setting; eager is the baseline it replaced
                    targets.at_most(f"{n:,} responses: server RSS after the policy build", r["rss_after"], 500, "MB")
                    targets.at_most(f"{n:,} responses: next pair p95", r["p95"], 50, "ms")
            db.unlink()
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
