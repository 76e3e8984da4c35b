"""Speed benchmarks that can fail: each figure beside its target, exit 1 on a miss or when
nothing happened, and ``make bench``'s one-line table of what held."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from collector.app import REPOSITORY
from collector.benchmarks.speed.targets import RESULTS_ENV, Targets, summary

SPEED = REPOSITORY / "collector" / "benchmarks" / "speed"


def test_a_missed_target_or_an_empty_run_fails_and_a_held_one_passes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "r.jsonl"))
    held = Targets("a")
    held.at_most("p95", 12.0, 50, "ms")
    held.at_least("rate", 60.0, 50, "texts/s")
    held.happened("swaps", 3, "swaps")
    assert held.finish() == 0
    missed = Targets("b")
    missed.at_most("p95", 51.0, 50, "ms")
    missed.happened("retrains", 0, "retrains")  # nothing happened: a miss, not a result
    assert missed.finish() == 1
    nan = Targets("c")
    nan.at_most("p95", float("nan"), 50, "ms")  # a figure that was never measured does not hold
    assert nan.finish() == 1
    assert Targets("d").finish() == 1  # no figure at all
    out = capsys.readouterr().out
    assert "MISSED  p95: 51 ms (target <= 50 ms)" in out and "held    p95: 12 ms (target <= 50 ms)" in out
    assert "d: no figure was measured" in out
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [(r["bench"], r["held"]) for r in rows] == [("a", True)] * 3 + [("b", False)] * 2 + [("c", False)]
    line, code = summary(tmp_path / "r.jsonl", ["a", "b", "c", "d"])
    assert code == 1 and line == "held: a 3/3 | b 0/2 MISSED | c 0/1 MISSED | d no result -> exit 1"
    assert summary(tmp_path / "r.jsonl", ["a"]) == ("held: a 3/3 -> exit 0", 0)


def test_every_speed_benchmark_checks_targets_and_exits_with_the_verdict():
    """No benchmark prints a figure and exits 0 whatever it was: each one's main returns
    ``Targets.finish()`` to ``sys.exit``, and ``make bench`` names every one."""
    makefile = (REPOSITORY / "Makefile").read_text()
    benches = sorted(p.stem for p in SPEED.glob("bench_*.py"))
    assert len(benches) >= 10
    for name in benches:
        text = (SPEED / f"{name}.py").read_text()
        assert "Targets(" in text and "targets.finish()" in text and "sys.exit(main())" in text, name
        assert name.removeprefix("bench_") in makefile, name


@pytest.mark.parametrize("argv", [
    ["bench_serving", "--responses", "800", "--pairs", "15"],
    ["bench_rebuild", "--responses", "800", "--annotators", "4", "--seconds", "3", "--every", "1",
     "--switch-intervals", "0.0005"],
], ids=["serving", "rebuild"])
def test_a_small_run_prints_each_figure_beside_its_target_and_exits_with_the_verdict(tmp_path, argv):
    """The exit code is the rows' verdict: 0 only when every row held (whatever this machine's
    speed), and the rebuild run must have rebuilt on a grown pool."""
    results = tmp_path / "r.jsonl"
    done = subprocess.run([sys.executable, "-m", f"collector.benchmarks.speed.{argv[0]}", *argv[1:]],
                          capture_output=True, text=True, cwd=REPOSITORY, timeout=300,
                          env={**os.environ, RESULTS_ENV: str(results), "OMP_NUM_THREADS": "1"})
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert rows and all("target" in r and r["unit"] for r in rows), done.stdout[-2000:]
    assert done.returncode == (0 if all(r["held"] for r in rows) else 1), done.stdout[-2000:]
    assert "(target " in done.stdout
    if argv[0] == "bench_rebuild":
        happened = [r for r in rows if "rebuilds on a growing pool" in r["figure"]]
        assert len(happened) == 2 and all(r["value"] >= 1 for r in happened), happened


def test_a_benchmark_without_its_data_fails_instead_of_skipping(tmp_path):
    done = subprocess.run([sys.executable, "-m", "collector.benchmarks.speed.bench_embeddings", "--backends",
                           "--data", str(tmp_path / "missing.jsonl.gz")],
                          capture_output=True, text=True, cwd=REPOSITORY, timeout=120)
    assert done.returncode == 1 and "no such file" in done.stdout and "no figure was measured" in done.stdout
