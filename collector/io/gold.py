"""Gold pairs: researcher-supplied pairs with a known answer, read from JSON Lines with the
importers' reader, all lines or none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from acquisition.core.errors import ImportFormatError
from collector.io.importers import check_text
from collector.io.importers.reading import read_input, read_rows
from collector.store import Store

_GOLD_SHAPES = {
    # first field, second field, expected answers allowed (mapped to first/second/tie/both_bad)
    "chosen": ("chosen", "rejected", {"chosen": "first", "tie": "tie", "both_bad": "both_bad"}),
    "left": ("left", "right", {"left": "first", "right": "second", "tie": "tie", "both_bad": "both_bad"}),
}
_GOLD_OPTIONAL = {"task_type", "id", "note", "expected"}


def parse_gold(raw: bytes, source: str) -> list[dict[str, Any]]:
    """Validate a gold file's content (JSON Lines or a JSON array, gzipped or not, read by the
    importers' reader); a bad line raises with the file, its number and the field.

    Two shapes: ``{"prompt", "chosen", "rejected"}`` (the chosen response is the expected
    answer; ``"expected": "tie"`` or ``"both_bad"`` says otherwise) or ``{"prompt", "left",
    "right", "expected": "left" | "right" | "tie" | "both_bad"}``. Optional: ``task_type``,
    ``id``, ``note``, and ``<side>_quality`` (a number, used only by simulated annotators).
    The two responses are shown in a random order whichever shape is used.
    """
    kind, rows = read_rows(source, raw)
    if kind != "json":
        raise ImportFormatError(f"{source}, line 1: gold pairs are JSON Lines (one object per line), "
                                "not CSV.")
    items = []
    for n, record in rows:
        where = f"{source}, line {n}"
        if not isinstance(record, dict):
            raise ImportFormatError(f"{where}: expected a JSON object, got {type(record).__name__}.")
        shape = "left" if "left" in record or "right" in record else "chosen"
        first, second, answers = _GOLD_SHAPES[shape]
        allowed = {"prompt", first, second, f"{first}_quality", f"{second}_quality"} | _GOLD_OPTIONAL
        unknown = sorted(set(record) - allowed)
        if unknown:
            raise ImportFormatError(
                f"{where}, field {unknown[0]!r} is not a gold field; allowed: {', '.join(sorted(allowed))}."
            )
        for name in ("prompt", first, second):
            value = record.get(name)
            if not isinstance(value, str) or not value.strip():
                raise ImportFormatError(f"{where}, field {name!r}: expected a non-empty string, got {value!r:.80}.")
            check_text(source, n, name, value)
        if record[first] == record[second]:
            raise ImportFormatError(f"{where}, field {second!r}: the two responses are the same text.")
        if shape == "left" and "expected" not in record:
            raise ImportFormatError(f"{where}, field 'expected': required with left/right, one of {', '.join(answers)}.")
        expected = record.get("expected", first)
        if expected not in answers:
            raise ImportFormatError(
                f"{where}, field 'expected': must be one of {', '.join(answers)}; got {expected!r}."
            )
        sides = []
        for name in (first, second):
            quality = record.get(f"{name}_quality")
            if quality is not None and (isinstance(quality, bool) or not isinstance(quality, (int, float))):
                raise ImportFormatError(f"{where}, field '{name}_quality': expected a number, got {quality!r}.")
            sides.append({"text": record[name], "quality": quality, "field": name})
        for name in ("task_type", "note"):
            if name in record and not isinstance(record[name], str):
                raise ImportFormatError(f"{where}, field {name!r}: expected a string, got {record[name]!r}.")
        items.append({
            "prompt": record["prompt"], "first": sides[0], "second": sides[1],
            "expected": answers[expected], "task_type": record.get("task_type"),
            "external_id": None if record.get("id") is None else str(record["id"]),
            "note": record.get("note"), "line": n,
        })
    if not items:
        raise ImportFormatError(f"{source}: no gold pairs in the file.")
    return items


def add_gold_file(store: Store, path: str | Path) -> tuple[int, int]:
    """Add a gold JSONL (or .jsonl.gz) file, all lines or none; returns ``(added, already_present)``."""
    return add_gold_text(store, read_input(path), str(path))


def add_gold_text(store: Store, data: bytes | str, source: str) -> tuple[int, int]:
    """Like ``add_gold_file`` for content already read (an upload on the researcher page)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return store.add_gold_items(parse_gold(raw, source), source)


def gold_frame(store: Store) -> pd.DataFrame:
    """Gold pairs with how often each was labelled and answered as expected."""
    rows = store.gold_items()
    columns = ["id", "prompt", "first_text", "second_text", "expected", "labels", "correct", "source", "line"]
    return pd.DataFrame([{c: r[c] for c in columns} for r in rows], columns=columns)
