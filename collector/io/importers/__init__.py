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
- ``arena-kaggle``: the Kaggle LMSYS Arena layout (CSV or JSON): ``prompt``, ``response_a``,
  ``response_b`` as JSON lists of one string per turn, ``winner_model_a`` / ``winner_model_b`` /
  ``winner_tie``; earlier turns become the prompt's transcript (side A's answers).
- ``csv``: a header row with ``prompt``, ``chosen``, ``rejected`` and optionally
  ``task_type`` and ``margin``.
- ``pku-saferlhf``, ``shp``, ``ultrafeedback-raw``, ``nectar``, ``helpsteer2``, ``helpsteer3``,
  ``oasst2`` (paired once the whole file is read), ``prism``:
  the field's other schemas (``formats.py``); a line that carries several comparisons (two
  dimensions, a ranking, rated completions) yields one preference per comparison, each with
  what it compared on in its covariates.

JSON formats come as JSON Lines or one JSON array, CSV as CSV, each optionally gzipped
(detected by its magic bytes); ``.parquet`` files are read with pandas, row numbers counting
as lines. Message lists are turned into text as follows: the messages both sides share are
the prompt, the rest of each side is its response; a single message is its ``content``
unchanged, several are rendered as a transcript (``User: ...\\n\\nAssistant: ...``).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acquisition.core.errors import ImportFormatError
from collector.io.importers.formats import FORMATS, PARSERS, WHOLE_FILE, _LineError, _type_name, detect_format
from collector.io.importers.reading import read_input, read_rows, stream_rows, streamable_sha256
from collector.store import Store

IMPORT_BATCH = int(os.environ.get("DECONFOUND_IMPORT_BATCH", "1000"))  # pairs written per batch


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
    covariates: dict[str, Any] | None = None  # who judged and how (Arena's judge, language, tstamp)
    comparison: int = 0  # which of its line's comparisons (a ranking, two dimensions) this is

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
    duplicate_lines: list[int] = field(default_factory=list)  # the same pair as an earlier line: stored once
    empty_lines: list[int] = field(default_factory=list)  # a blank prompt or response: refused

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
    duplicate_lines: tuple[int, ...] = ()
    empty_lines: tuple[int, ...] = ()

    def summary(self) -> str:
        text = (
            f"Imported {self.path} ({self.format}): {self.pairs} pairs; "
            f"{self.new_prompts} new prompts, {self.new_responses} new responses, "
            f"{self.new_preferences} new human preferences."
        )
        if self.pairs and not self.new_preferences:
            text += " (Every preference in the file was already imported.)"
        if self.identical_lines:
            text += (f" {len(self.identical_lines)} pairs had the same text on both sides (lines "
                     f"{_lines(self.identical_lines)}): their texts are in the pool, no preference was stored.")
        if self.empty_lines:
            text += (f" {len(self.empty_lines)} pairs had a blank prompt or response (lines "
                     f"{_lines(self.empty_lines)}): refused, nothing of them was stored.")
        if self.duplicate_lines:
            text += (f" {len(self.duplicate_lines)} lines repeat an earlier line's pair (lines "
                     f"{_lines(self.duplicate_lines)}): each pair was stored once.")
        return text


def _lines(numbers: tuple[int, ...] | list[int]) -> str:
    shown = ", ".join(map(str, numbers[:10]))
    return shown + ("" if len(numbers) <= 10 else f" and {len(numbers) - 10} more")


MAX_TEXT_CHARS = int(os.environ.get("DECONFOUND_MAX_TEXT_CHARS", "100000"))  # per prompt or response


MAX_LABEL_CHARS = 200  # a prompt type or a model name


def text_problem(value: str, limit: int = MAX_TEXT_CHARS) -> str | None:
    """Why ``value`` cannot be stored as a prompt or response (None when it can): more than
    ``limit`` characters (a 50 MB line would take gigabytes to embed), or invalid Unicode (a lone
    surrogate)."""
    if len(value) > limit:
        return f"{len(value):,} characters; at most {limit:,} (DECONFOUND_MAX_TEXT_CHARS raises the limit)."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"holds an invalid character ({exc.reason}, {value[exc.start]!r} at position {exc.start})."
    return None


def check_text(path: str, number: int, field_name: str, value: str, limit: int = MAX_TEXT_CHARS) -> None:
    """A prompt or response the pool can hold (``text_problem``), or an error naming its line and field."""
    if (problem := text_problem(value, limit)) is not None:
        raise ImportFormatError(f"{path}, line {number}, field {field_name!r}: {problem}")


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
    kind, rows = read_rows(name, raw)
    stats = _Stats(fmt)
    records: list[dict[str, Any]] = []
    preferences: list[ImportedPreference] = []
    for record, preference in _parse_rows(name, kind, rows, stats, task_type):
        records.append(record)
        if preference is not None:
            preferences.append(preference)
    stats.finish(name)
    return ParsedImport(name, stats.fmt, records, preferences, hashlib.sha256(raw).hexdigest(), stats.lines,
                        stats.identical, stats.duplicates, stats.empty)


@dataclass
class _Stats:
    """What a pass over the rows counted (and the format it settled on)."""

    fmt: str
    lines: int = 0
    records: int = 0
    identical: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    empty: list[int] = field(default_factory=list)

    def finish(self, path: str) -> None:
        if not self.lines:
            raise ImportFormatError(f"{path}: no rows to import.")
        if not self.records:
            raise ImportFormatError(f"{path}: no pair to import; every line had a blank prompt or response "
                                    f"(lines {_lines(self.empty)}).")


def _parse_rows(path: str, kind: str, rows, stats: _Stats, task_type: str | None):
    """Validate rows one by one: yields ``(pool record, ImportedPreference or None)``; raises
    ``ImportFormatError`` naming the line and field of the first bad row. Memory per row: the
    duplicate check keeps a 16-byte digest per pair, not its texts."""
    seen: set[bytes] = set()
    default_type = task_type or "general"
    whole = None
    for number, row in rows:
        stats.lines += 1
        if not isinstance(row, dict):
            raise ImportFormatError(f"{path}, line {number}: expected a JSON object, got {_type_name(row)}.")
        if stats.fmt == "auto":
            found = detect_format(row, kind)
            if found is None:
                raise ImportFormatError(
                    f"{path}, line {number}: cannot tell the format from the fields "
                    f"{', '.join(map(repr, sorted(row)))}; expected HH-RLHF (chosen/rejected dialogues), "
                    "TRL (prompt/chosen/rejected), UltraFeedback (score_chosen/score_rejected), "
                    "Chatbot Arena (model_a/model_b/winner), the Kaggle Arena layout (response_a/response_b/"
                    "winner_model_a), PKU-SafeRLHF, SHP, raw UltraFeedback, Nectar, HelpSteer2/3, oasst2, PRISM "
                    "or CSV; "
                    "or pass --format."
                )
            stats.fmt = found
        elif stats.fmt == "csv" and kind != "csv":
            raise ImportFormatError(f"{path}, line {number}: --format csv, but the file holds JSON.")
        elif stats.fmt not in ("csv", "arena-kaggle") and kind == "csv":
            raise ImportFormatError(f"{path}, line {number}: --format {stats.fmt}, but the file is not JSON (it reads as CSV).")
        if stats.fmt in WHOLE_FILE:  # its lines are paired once all are read
            whole = whole if whole is not None else WHOLE_FILE[stats.fmt]()
            try:
                whole.add(row, number)
            except _LineError as exc:
                raise ImportFormatError(f"{path}, line {number}, field {exc.field_name!r}: {exc.message}.") from None
            continue
        try:
            parsed = PARSERS[stats.fmt](row)
        except _LineError as exc:
            raise ImportFormatError(f"{path}, line {number}, field {exc.field_name!r}: {exc.message}.") from None
        for comparison, (prompt, chosen, rejected, outcome, margin, external_id, row_type, extra) in enumerate(
                parsed if isinstance(parsed, list) else [parsed]):  # a line may hold several comparisons
            item = _pair(path, number, prompt, chosen, rejected, outcome, margin, external_id, row_type, extra,
                         stats, seen, default_type, comparison)
            if item is not None:
                yield item
    if whole is not None:
        counts: dict[int, int] = {}
        for number, (prompt, chosen, rejected, outcome, margin, external_id, row_type, extra) in whole.pairs():
            counts[number] = counts.get(number, -1) + 1  # the comparisons that share a chosen message's line
            item = _pair(path, number, prompt, chosen, rejected, outcome, margin, external_id, row_type, extra,
                         stats, seen, default_type, counts[number])
            if item is not None:
                yield item


def _pair(path: str, number: int, prompt: str, chosen: str, rejected: str, outcome: str, margin: float | None,
          external_id: str | None, row_type: Any, extra: dict[str, Any], stats: _Stats, seen: set[bytes],
          default_type: str, comparison: int = 0) -> tuple[dict[str, Any], ImportedPreference | None] | None:
    """One comparison of a line, checked: ``(pool record, preference or None)``, or ``None``
    when it is blank or repeats an earlier comparison (counted in ``stats``)."""
    for field_name, value in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
        check_text(path, number, field_name, value)
    if not (prompt.strip() and chosen.strip() and rejected.strip()):
        stats.empty.append(number)  # real data has these (4 of 1,500 HH-RLHF pairs end in an empty turn)
        return None
    if row_type is not None and not isinstance(row_type, str):
        raise ImportFormatError(f"{path}, line {number}, field 'task_type': expected a string.")
    labels: list[tuple[str, Any]] = [("task_type", row_type), ("model_a/chosen model", extra.get("chosen_model")),
                                     ("model_b/rejected model", extra.get("rejected_model"))]
    for label_name, label in labels:
        if isinstance(label, str):  # a label, not a text: short, and valid Unicode
            check_text(path, number, label_name, label, limit=MAX_LABEL_CHARS)
    covariates = extra.get("covariates") or None
    # what a comparison was made on (PKU-SafeRLHF's better / safer) keeps two labels of one pair apart
    dimension = str((covariates or {}).get("dimension", ""))
    key = hashlib.blake2b("\0".join((prompt, chosen, rejected, outcome, dimension)).encode("utf-8"),
                          digest_size=16).digest()
    if key in seen:
        stats.duplicates.append(number)
        return None
    seen.add(key)
    stats.records += 1
    record = {
        "prompt": prompt, "task_type": (row_type or "").strip() or default_type,
        "external_id": external_id, "line": number,
        "responses": [
            {"text": chosen, "quality": extra.get("chosen_quality"), "model": extra.get("chosen_model")},
            {"text": rejected, "quality": extra.get("rejected_quality"), "model": extra.get("rejected_model")},
        ],
    }
    if chosen == rejected:
        stats.identical.append(number)
        return record, None
    return record, ImportedPreference(prompt, chosen, rejected, number, outcome, margin, external_id, covariates,
                                      comparison)


def import_parsed(store: Store, parsed: ParsedImport) -> ImportResult:
    """Write a parsed file's pool records and preferences in one transaction."""
    new_prompts, new_responses, new_preferences = store.add_imported(
        parsed.records,
        [_preference_row(p) for p in parsed.preferences],
        source=file_label(parsed.path), fmt=parsed.format, file_sha256=parsed.file_sha256,
    )
    return ImportResult(parsed.path, parsed.format, parsed.lines, new_prompts, new_responses,
                        new_preferences, tuple(parsed.identical_lines), tuple(parsed.duplicate_lines),
                        tuple(parsed.empty_lines))


def import_file(store: Store, path: str | Path, fmt: str = "auto", task_type: str | None = None,
                progress=None) -> ImportResult:
    """Import a file; nothing is written on any error.

    JSON Lines and CSV files (gzipped or not) are streamed: a first pass reads and validates
    every line (and hashes the file), a second writes them in one transaction in batches of
    ``IMPORT_BATCH`` pairs, so memory is bounded by a batch and a 16-byte digest per pair, not
    by the file. JSON arrays and Parquet files are parsed whole first. ``progress(phase,
    done, total, elapsed)`` is called as each phase goes: ``"checking"`` / ``"checked"`` with
    the lines read (``total`` is ``None``), then ``"writing"`` with the pairs written of ``total``."""
    if fmt != "auto" and fmt not in FORMATS:
        raise ImportFormatError(f"--format: unknown format {fmt!r}; choose auto or one of {', '.join(FORMATS)}.")
    name = str(path)
    file_sha256 = streamable_sha256(name) if os.environ.get("DECONFOUND_IMPORT_STREAM", "1") != "0" else None
    if file_sha256 is None:  # a JSON array or Parquet file (or streaming turned off): parsed whole
        return import_parsed(store, parse_file(path, fmt, task_type))
    started = time.perf_counter()
    stats = _Stats(fmt)
    for _ in _parse_rows(name, *stream_rows(name), stats, task_type):
        if progress and stats.lines % IMPORT_BATCH == 0:
            progress("checking", stats.lines, None, time.perf_counter() - started)
    stats.finish(name)
    if progress:
        progress("checked", stats.lines, None, time.perf_counter() - started)
    written = _Stats(stats.fmt)
    started = time.perf_counter()
    source = file_label(name)
    new_prompts = new_responses = new_preferences = 0
    batch: list[tuple[dict[str, Any], ImportedPreference | None]] = []

    def flush() -> None:
        nonlocal new_prompts, new_responses, new_preferences
        counts = store.add_imported([r for r, _ in batch], [_preference_row(p) for _, p in batch if p is not None],
                                    source=source, fmt=stats.fmt, file_sha256=file_sha256)
        new_prompts, new_responses, new_preferences = (a + b for a, b in zip((new_prompts, new_responses, new_preferences),
                                                                             counts))
        batch.clear()
        if progress:
            progress("writing", written.records, stats.records, time.perf_counter() - started)

    with store.transaction():
        for item in _parse_rows(name, *stream_rows(name), written, task_type):
            batch.append(item)
            if len(batch) >= IMPORT_BATCH:
                flush()
        if batch:
            flush()
    return ImportResult(name, stats.fmt, stats.lines, new_prompts, new_responses, new_preferences,
                        tuple(stats.identical), tuple(stats.duplicates), tuple(stats.empty))


def file_label(path: str | Path) -> str:
    """A file's name as the store records it: a name that is not valid UTF-8 (the OS allows any
    bytes) is kept with its odd bytes escaped (``\udce9``), as the command prints it."""
    return Path(path).name.encode("utf-8", "backslashreplace").decode("utf-8")


def _preference_row(p: ImportedPreference) -> dict[str, Any]:
    return {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected, "outcome": p.outcome,
            "margin": p.margin, "external_id": p.external_id, "line": p.line, "covariates": p.covariates,
            "comparison": p.comparison}


def import_upload(store: Store, name: str, raw: bytes, fmt: str = "auto",
                  task_type: str | None = None) -> ImportResult:
    """Import an uploaded file's content (the data page); errors name the uploaded file."""
    return import_parsed(store, parse_bytes(raw, name, fmt, task_type))
