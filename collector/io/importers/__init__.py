"""Read preference data in the formats the field uses, into the pool and the human labels.

``parse_file`` turns a file into a ``ParsedImport``: pool records (the ``Store.add_pool``
shape) and one ``ImportedPreference`` per input pair. ``import_file`` writes both in one
transaction. Every file is parsed completely before anything is written, so a malformed
line imports nothing; the error names the file, the line and the field.

Formats (``--format``; ``auto`` looks at the content, never at the file name):

- ``hh-rlhf``: ``{"chosen", "rejected"}``, each a whole dialogue
  (``\\n\\nHuman: ... \\n\\nAssistant: ...``). The prompt is the dialogue before the last
  ``\\n\\nAssistant:`` marker that chosen and rejected share; each response is what follows
  that marker. The marker belongs to neither, and surrounding whitespace is stripped from
  each (HH-RLHF puts a space after every marker), so the annotator sees the conversation so
  far (``Human: ...``) as the request and the two final assistant turns as the responses.
  Where the two dialogues differ before their last turn (one pair in the harmless-base
  sample), the split is at the last marker they share, and each response keeps its later
  turns.
- ``trl``: TRL preference rows, standard (``prompt``, ``chosen``, ``rejected`` strings) or
  conversational (lists of ``{"role", "content"}``; the prompt may be implicit, i.e. the
  messages chosen and rejected share), optional float ``margin`` and ``task_type``.
- ``ultrafeedback``: UltraFeedback binarized: ``prompt``, ``prompt_id``, ``chosen`` and
  ``rejected`` message lists, ``score_chosen``, ``score_rejected`` (kept as the responses'
  known quality; their difference is the margin).
- ``arena``: Chatbot Arena battles: ``question_id``, ``model_a``, ``model_b``, ``winner``
  (``model_a``, ``model_b``, ``tie``, ``tie (bothbad)``), ``conversation_a``/``conversation_b``.
  For a tie, ``chosen`` is side A and ``rejected`` side B, with the outcome ``tie``/``both_bad``.
- ``csv``: a header row with ``prompt``, ``chosen``, ``rejected`` and optionally
  ``task_type`` and ``margin``.

JSON formats come as JSON Lines or one JSON array, CSV as CSV, each optionally gzipped
(detected by its magic bytes); ``.parquet`` files are read with pandas, row numbers counting
as lines. Message lists are turned into text as follows: the messages both sides share are
the prompt, the rest of each side is its response; a single message is its ``content``
unchanged, several are rendered as a transcript (``User: ...\\n\\nAssistant: ...``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acquisition.core.errors import ImportFormatError
from collector.io.importers.formats import FORMATS, PARSERS, _LineError, _type_name, detect_format
from collector.io.importers.reading import read_input, read_rows
from collector.store import Store


@dataclass(frozen=True)
class ImportedPreference:
    """One human comparison from the input file.

    ``outcome`` is ``"chosen"`` (``chosen`` was preferred), ``"tie"`` or ``"both_bad"``; for the
    last two, ``chosen``/``rejected`` are just the two sides (A, B) in the file's order.
    """

    prompt: str
    chosen: str
    rejected: str
    line: int
    outcome: str = "chosen"
    margin: float | None = None
    external_id: str | None = None

    @property
    def tie(self) -> bool:
        return self.outcome != "chosen"


@dataclass
class ParsedImport:
    """A whole file, parsed and validated; nothing is written until ``import_parsed``."""

    path: str
    format: str
    records: list[dict[str, Any]]
    preferences: list[ImportedPreference]
    file_sha256: str
    lines: int = 0
    identical_lines: list[int] = field(default_factory=list)

    @property
    def prompts(self) -> int:
        """Distinct prompt texts in the file."""
        return len({r["prompt"] for r in self.records})


@dataclass(frozen=True)
class ImportResult:
    path: str
    format: str
    pairs: int
    new_prompts: int
    new_responses: int
    new_preferences: int
    identical_lines: tuple[int, ...] = ()

    def summary(self) -> str:
        text = (
            f"Imported {self.path} ({self.format}): {self.pairs} pairs; "
            f"{self.new_prompts} new prompts, {self.new_responses} new responses, "
            f"{self.new_preferences} new human preferences."
        )
        if self.pairs and not self.new_preferences:
            text += " (Every preference in the file was already imported.)"
        if self.identical_lines:
            shown = ", ".join(map(str, self.identical_lines[:10]))
            more = "" if len(self.identical_lines) <= 10 else f" and {len(self.identical_lines) - 10} more"
            text += (f" {len(self.identical_lines)} pairs had the same text on both sides (lines "
                     f"{shown}{more}): their texts are in the pool, no preference was stored.")
        return text


def parse_file(path: str | Path, fmt: str = "auto", task_type: str | None = None) -> ParsedImport:
    """Read and validate a whole preference file.

    Args:
        path: the file (JSON Lines, JSON array, CSV or Parquet; gzipped or not).
        fmt: ``"auto"`` (from the content) or one of ``FORMATS``.
        task_type: prompt type for rows without a ``task_type`` of their own (default ``general``).

    Returns:
        The pool records (one per pair, in file order; the store de-duplicates texts by hash) and
        one ``ImportedPreference`` per pair.

    Raises:
        ImportFormatError: naming the file, the line and the field, for the first bad line.
    """
    return parse_bytes(read_input(path), str(path), fmt, task_type)


def parse_bytes(raw: bytes, name: str, fmt: str = "auto", task_type: str | None = None) -> ParsedImport:
    """``parse_file`` for a file's content (an upload); ``name`` is what errors call the file."""
    if fmt != "auto" and fmt not in FORMATS:
        raise ImportFormatError(f"--format: unknown format {fmt!r}; choose auto or one of {', '.join(FORMATS)}.")
    path = name
    kind, rows = read_rows(path, raw)
    records: list[dict[str, Any]] = []
    preferences: list[ImportedPreference] = []
    identical: list[int] = []
    default_type = task_type or "general"
    lines = 0
    for number, row in rows:
        lines += 1
        if not isinstance(row, dict):
            raise ImportFormatError(f"{path}, line {number}: expected a JSON object, got {_type_name(row)}.")
        if fmt == "auto":
            found = detect_format(row, kind)
            if found is None:
                raise ImportFormatError(
                    f"{path}, line {number}: cannot tell the format from the fields "
                    f"{', '.join(map(repr, sorted(row)))}; expected HH-RLHF (chosen/rejected dialogues), "
                    "TRL (prompt/chosen/rejected), UltraFeedback (score_chosen/score_rejected), "
                    "Chatbot Arena (model_a/model_b/winner) or CSV; or pass --format."
                )
            fmt = found
        elif fmt == "csv" and kind != "csv":
            raise ImportFormatError(f"{path}, line {number}: --format csv, but the file holds JSON.")
        elif fmt != "csv" and kind == "csv":
            raise ImportFormatError(f"{path}, line {number}: --format {fmt}, but the file is not JSON (it reads as CSV).")
        try:
            prompt, chosen, rejected, outcome, margin, external_id, row_type, extra = PARSERS[fmt](row)
        except _LineError as exc:
            raise ImportFormatError(f"{path}, line {number}, field {exc.field_name!r}: {exc.message}.") from None
        if not prompt.strip():
            raise ImportFormatError(f"{path}, line {number}, field 'prompt': empty.")
        if row_type is not None and not isinstance(row_type, str):
            raise ImportFormatError(f"{path}, line {number}, field 'task_type': expected a string.")
        records.append({
            "prompt": prompt, "task_type": (row_type or "").strip() or default_type,
            "external_id": external_id,
            "responses": [
                {"text": chosen, "quality": extra.get("chosen_quality"), "model": extra.get("chosen_model")},
                {"text": rejected, "quality": extra.get("rejected_quality"), "model": extra.get("rejected_model")},
            ],
        })
        if chosen == rejected:
            identical.append(number)
            continue
        preferences.append(ImportedPreference(prompt, chosen, rejected, number, outcome, margin, external_id))
    if not lines:
        raise ImportFormatError(f"{path}: no rows to import.")
    return ParsedImport(path, fmt, records, preferences, hashlib.sha256(raw).hexdigest(), lines, identical)


def import_parsed(store: Store, parsed: ParsedImport) -> ImportResult:
    """Write a parsed file's pool records and preferences in one transaction."""
    new_prompts, new_responses, new_preferences = store.add_imported(
        parsed.records,
        [
            {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected, "outcome": p.outcome,
             "margin": p.margin, "external_id": p.external_id, "line": p.line}
            for p in parsed.preferences
        ],
        source=Path(parsed.path).name, fmt=parsed.format, file_sha256=parsed.file_sha256,
    )
    return ImportResult(parsed.path, parsed.format, parsed.lines, new_prompts, new_responses,
                        new_preferences, tuple(parsed.identical_lines))


def import_file(store: Store, path: str | Path, fmt: str = "auto", task_type: str | None = None) -> ImportResult:
    """Parse a whole file, then write it in one transaction (nothing is written on any error)."""
    return import_parsed(store, parse_file(path, fmt, task_type))


def import_upload(store: Store, name: str, raw: bytes, fmt: str = "auto",
                  task_type: str | None = None) -> ImportResult:
    """Import an uploaded file's content (the data page); errors name the uploaded file."""
    return import_parsed(store, parse_bytes(raw, name, fmt, task_type))
