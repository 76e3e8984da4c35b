"""Speed benchmarks that can fail: every figure is printed beside its target, and a benchmark
exits non-zero when one misses. A run where the thing measured did not happen (no model
swapped in, no retrain, the wrong page) is a miss too, not a result.

Each benchmark makes one ``Targets``, calls ``at_most`` / ``at_least`` / ``happened`` for its
figures, and ends with ``sys.exit(targets.finish())``. With ``DECONFOUND_BENCH_RESULTS`` set to
a file, every row is also appended there as one JSON line; ``python -m
collector.benchmarks.speed.targets FILE`` prints the one-line table that ``make bench`` ends with,
and exits 1 unless every row held and every benchmark finished."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS_ENV = "DECONFOUND_BENCH_RESULTS"


@dataclass(frozen=True)
class Row:
    """One figure against its target."""

    bench: str
    figure: str
    value: float
    unit: str
    target: str  # e.g. "<= 50 ms"
    held: bool

    def line(self) -> str:
        return (f"  {'held  ' if self.held else 'MISSED'}  {self.figure}: {self.value:,.4g} {self.unit} "
                f"(target {self.target})")


class Targets:
    """The figures of one benchmark run, each against its target."""

    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.rows: list[Row] = []

    def _add(self, figure: str, value: float, unit: str, target: str, held: bool) -> bool:
        row = Row(self.bench, figure, float(value), unit, target, bool(held))
        self.rows.append(row)
        print(row.line(), flush=True)
        return row.held

    def at_most(self, figure: str, value: float, limit: float, unit: str) -> bool:
        return self._add(figure, value, unit, f"<= {limit:,.4g} {unit}", value == value and value <= limit)

    def at_least(self, figure: str, value: float, limit: float, unit: str) -> bool:
        return self._add(figure, value, unit, f">= {limit:,.4g} {unit}", value == value and value >= limit)

    def happened(self, figure: str, count: float, what: str) -> bool:
        """The event the benchmark exists to measure took place at least once (a swap, a retrain)."""
        return self._add(figure, count, what, f">= 1 {what} (else nothing was measured)", count >= 1)

    def finish(self) -> int:
        """Print the verdict, append the rows to ``$DECONFOUND_BENCH_RESULTS``; 0 if all held."""
        missed = [r for r in self.rows if not r.held]
        if not self.rows:
            print(f"{self.bench}: no figure was measured: a failure, not a result", flush=True)
        else:
            print(f"{self.bench}: {len(self.rows) - len(missed)} of {len(self.rows)} targets held"
                  + (f"; missed: {', '.join(r.figure for r in missed)}" if missed else ""), flush=True)
        path = os.environ.get(RESULTS_ENV)
        if path:
            with open(path, "a", encoding="utf-8") as f:
                for row in self.rows:
                    f.write(json.dumps(asdict(row)) + "\n")
        return 0 if self.rows and not missed else 1


def summary(path: Path, expected: list[str]) -> tuple[str, int]:
    """The one-line table of what held, per benchmark, and the exit code (1 on any miss, or a
    benchmark in ``expected`` with no row: it crashed or measured nothing)."""
    rows = [Row(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] \
        if path.exists() else []
    cells, failed = [], False
    for bench in expected:
        mine = [r for r in rows if r.bench == bench]
        held = sum(r.held for r in mine)
        if not mine:
            cells.append(f"{bench} no result")
            failed = True
        else:
            cells.append(f"{bench} {held}/{len(mine)}" + ("" if held == len(mine) else " MISSED"))
            failed |= held < len(mine)
    return "held: " + " | ".join(cells) + f" -> exit {int(failed)}", int(failed)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m collector.benchmarks.speed.targets RESULTS.jsonl BENCH...", file=sys.stderr)
        return 2
    line, code = summary(Path(argv[0]), argv[1:])
    print(line)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
