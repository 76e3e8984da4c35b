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

import csv
import gzip
import hashlib
import io
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.errors import ImportFormatError
from collector.store import Store

FORMATS = ("hh-rlhf", "trl", "ultrafeedback", "arena", "csv")
OUTCOMES = ("chosen", "tie", "both_bad")
HH_MARKER = "\n\nAssistant:"
ARENA_WINNERS = {"model_a": "chosen", "model_b": "chosen", "tie": "tie", "tie (bothbad)": "both_bad"}


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


class _LineError(Exception):
    """A field of one line is wrong; ``parse_file`` adds the file and line."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field_name, self.message = field_name, message


# ---------------------------------------------------------------------- reading the file
def _decompress(path: str, data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ImportFormatError(f"{path}: the file looks gzipped but cannot be decompressed ({exc}).") from None
    return data


def _rows(path: str, raw: bytes) -> tuple[str, Iterator[tuple[int, Any]]]:
    """``("json"|"csv", iterator of (line number, row))``; rows are dicts for CSV and Parquet,
    any JSON value for JSON (checked later)."""
    if raw[:4] == b"PAR1":
        return "json", _parquet_rows(path, raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportFormatError(f"{path}, line {line}: not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    stripped = text.lstrip()
    if not stripped:
        raise ImportFormatError(f"{path}: the file is empty.")
    if stripped[0] == "[":
        return "json", _json_array_rows(path, text)
    if stripped[0] == "{":
        return "json", _jsonl_rows(path, text)
    return "csv", _csv_rows(path, text)


def _jsonl_rows(path: str, text: str) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(
                f"{path}, line {number}, column {exc.colno}: not valid JSON ({exc.msg})."
            ) from None


def _json_array_rows(path: str, text: str) -> Iterator[tuple[int, Any]]:
    """A JSON array of objects; each object's line is where it starts in the file."""
    decoder = json.JSONDecoder()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"{path}, line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}).") from None
    if not isinstance(value, list):
        raise ImportFormatError(f"{path}, line 1: expected a JSON array of objects.")
    # find where each element starts, for line numbers
    pos = text.index("[") + 1
    for item in value:
        while text[pos] in " \t\r\n,":
            pos += 1
        line = text.count("\n", 0, pos) + 1
        _, pos = decoder.raw_decode(text, pos)
        yield line, item


def _csv_rows(path: str, text: str) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except csv.Error as exc:
        raise ImportFormatError(f"{path}, line 1: not valid CSV ({exc}).") from None
    header = [h.strip() for h in header]
    missing = [c for c in ("prompt", "chosen", "rejected") if c not in header]
    if missing:
        raise ImportFormatError(
            f"{path}, line 1, field {missing[0]!r}: the CSV header has no {', '.join(map(repr, missing))} "
            f"column (found {', '.join(map(repr, header))}); CSV imports need prompt, chosen and "
            "rejected columns (task_type and margin are optional)."
        )
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise ImportFormatError(f"{path}, line 1, field {dup!r}: the column appears twice in the header.")
    end = reader.line_num
    while True:
        start = end + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFormatError(f"{path}, line {start}: not valid CSV ({exc}).") from None
        end = reader.line_num
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise ImportFormatError(
                f"{path}, line {start}, field {header[min(len(values), len(header) - 1)]!r}: "
                f"{len(values)} values for {len(header)} columns."
            )
        yield start, dict(zip(header, values))


def _parquet_rows(path: str, raw: bytes) -> Iterator[tuple[int, Any]]:
    import pandas as pd

    try:
        df = pd.read_parquet(io.BytesIO(raw))
    except Exception as exc:  # pyarrow raises several kinds
        raise ImportFormatError(f"{path}: not a readable Parquet file ({exc}).") from None
    for number, row in enumerate(df.to_dict("records"), start=1):
        yield number, {k: _plain(v) for k, v in row.items()}


def _plain(value: Any) -> Any:
    """Parquet cells as JSON values: arrays to lists, NaN/NA to None."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    return value


# ---------------------------------------------------------------------- detection
def detect_format(row: Any, kind: str) -> str | None:
    """The format one row (the first of the file) looks like, or ``None``."""
    if kind == "csv":
        return "csv"
    if not isinstance(row, dict):
        return None
    keys = set(row)
    if {"model_a", "model_b", "winner"} <= keys:
        return "arena"
    if {"chosen", "rejected"} <= keys:
        if "score_chosen" in keys or "score_rejected" in keys:
            return "ultrafeedback"
        if "prompt" in keys:
            return "trl"
        if isinstance(row["chosen"], list):
            return "trl"  # conversational, implicit prompt
        if isinstance(row["chosen"], str) and HH_MARKER in row["chosen"]:
            return "hh-rlhf"
    return None


# ---------------------------------------------------------------------- fields
def _text(row: dict[str, Any], name: str, *, allow_empty: bool = True) -> str:
    if name not in row or row[name] is None:
        raise _LineError(name, "missing")
    value = row[name]
    if not isinstance(value, str):
        raise _LineError(name, f"expected a string, got {_type_name(value)}")
    if not allow_empty and not value.strip():
        raise _LineError(name, "empty")
    return value


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean", int: "a number", float: "a number",
            type(None): "null"}.get(type(value), type(value).__name__)


def _optional_float(row: dict[str, Any], name: str) -> float | None:
    value = row.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _LineError(name, "expected a number, got a boolean")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _LineError(name, f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise _LineError(name, f"expected a finite number, got {value!r}")
    return number


def _optional_text(row: dict[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _LineError(name, f"expected a string, got {_type_name(value)}")
    return value


def _messages(row: dict[str, Any], name: str) -> list[dict[str, str]]:
    if name not in row or row[name] is None:
        raise _LineError(name, "missing")
    value = row[name]
    if not isinstance(value, list):
        raise _LineError(name, f"expected a list of {{role, content}} messages, got {_type_name(value)}")
    out = []
    for i, message in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(message, dict):
            raise _LineError(where, f"expected a {{role, content}} message, got {_type_name(message)}")
        for key in ("role", "content"):
            if not isinstance(message.get(key), str):
                got = "missing" if message.get(key) is None else _type_name(message[key])
                raise _LineError(f"{where}.{key}", f"expected a string, got {got}")
        out.append({"role": message["role"], "content": message["content"]})
    return out


def render_messages(messages: list[dict[str, str]]) -> str:
    """One message is its content; several become a ``Role: content`` transcript."""
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"{m['role'].strip().capitalize()}: {m['content']}" for m in messages)


def _split_messages(
    chosen: list[dict[str, str]], rejected: list[dict[str, str]], chosen_name: str, rejected_name: str,
    prompt: str | None,
) -> tuple[str, str, str]:
    """Prompt and both responses from two message lists (shared messages are the prompt)."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
        shared += 1
    if prompt is None:
        if shared == 0:
            raise _LineError(rejected_name, f"shares no opening (prompt) messages with {chosen_name}, "
                                            "and there is no prompt field to take the prompt from")
        prompt = render_messages(chosen[:shared])
    elif shared and render_messages(chosen[:shared]) != prompt and not (
        shared == 1 and chosen[0]["content"] == prompt
    ):
        # the shared messages hold more than the prompt field (earlier turns): keep them
        prompt = render_messages(chosen[:shared])
    if not chosen[shared:]:
        raise _LineError(chosen_name, "no response after the prompt messages")
    if not rejected[shared:]:
        raise _LineError(rejected_name, "no response after the prompt messages")
    return prompt, render_messages(chosen[shared:]), render_messages(rejected[shared:])


# ---------------------------------------------------------------------- one line per format
Parsed = tuple[str, str, str, str, float | None, str | None, str | None, dict[str, Any]]
# (prompt, chosen, rejected, outcome, margin, external_id, task_type, extra response fields)


def _hh(row: dict[str, Any]) -> Parsed:
    chosen, rejected = _text(row, "chosen"), _text(row, "rejected")
    common = os.path.commonprefix([chosen, rejected])
    cut = common.rfind(HH_MARKER)
    if cut < 0:
        field_name = "chosen" if HH_MARKER not in chosen else "rejected"
        if HH_MARKER in chosen and HH_MARKER in rejected:
            raise _LineError("rejected", "chosen and rejected share no dialogue up to an "
                                         "'\\n\\nAssistant:' turn")
        raise _LineError(field_name, "no '\\n\\nAssistant:' turn in the dialogue")
    prompt = chosen[:cut].strip()
    if not prompt:
        raise _LineError("chosen", "empty dialogue before the last '\\n\\nAssistant:' turn")
    after = cut + len(HH_MARKER)
    return prompt, chosen[after:].strip(), rejected[after:].strip(), "chosen", None, None, row.get("task_type"), {}


def _trl(row: dict[str, Any]) -> Parsed:
    margin = _optional_float(row, "margin")
    chosen, rejected = row.get("chosen"), row.get("rejected")
    if isinstance(chosen, list) or isinstance(rejected, list):
        prompt: str | None = None
        prompt_messages: list[dict[str, str]] = []
        if "prompt" in row and row["prompt"] is not None:
            if isinstance(row["prompt"], list):
                prompt_messages = _messages(row, "prompt")
                if not prompt_messages:
                    raise _LineError("prompt", "empty message list")
                prompt = render_messages(prompt_messages)
            else:
                prompt = _text(row, "prompt", allow_empty=False)
        c, r = _messages(row, "chosen"), _messages(row, "rejected")
        if prompt_messages:  # explicit prompt: the lists hold the responses only
            if not c:
                raise _LineError("chosen", "empty message list")
            if not r:
                raise _LineError("rejected", "empty message list")
            chosen_text, rejected_text = render_messages(c), render_messages(r)
        else:
            prompt, chosen_text, rejected_text = _split_messages(c, r, "chosen", "rejected", prompt)
    else:
        prompt = _text(row, "prompt", allow_empty=False)
        chosen_text, rejected_text = _text(row, "chosen"), _text(row, "rejected")
    external = _optional_text(row, "id")
    return prompt, chosen_text, rejected_text, "chosen", margin, external, _optional_text(row, "task_type"), {}


def _ultrafeedback(row: dict[str, Any]) -> Parsed:
    prompt = _text(row, "prompt", allow_empty=False)
    score_chosen, score_rejected = _optional_float(row, "score_chosen"), _optional_float(row, "score_rejected")
    prompt, chosen, rejected = _split_messages(
        _messages(row, "chosen"), _messages(row, "rejected"), "chosen", "rejected", prompt)
    margin = None if score_chosen is None or score_rejected is None else score_chosen - score_rejected
    extra = {"chosen_quality": score_chosen, "rejected_quality": score_rejected}
    return prompt, chosen, rejected, "chosen", margin, _optional_text(row, "prompt_id"), _optional_text(row, "task_type"), extra


def _arena(row: dict[str, Any]) -> Parsed:
    model_a, model_b = _text(row, "model_a", allow_empty=False), _text(row, "model_b", allow_empty=False)
    winner = _text(row, "winner")
    if winner not in ARENA_WINNERS:
        raise _LineError("winner", f"expected one of {', '.join(map(repr, ARENA_WINNERS))}, got {winner!r}")
    a, b = _messages(row, "conversation_a"), _messages(row, "conversation_b")
    if winner == "model_b":
        prompt, chosen, rejected = _split_messages(b, a, "conversation_b", "conversation_a", None)
        models = (model_b, model_a)
    else:
        prompt, chosen, rejected = _split_messages(a, b, "conversation_a", "conversation_b", None)
        models = (model_a, model_b)
    extra = {"chosen_model": models[0], "rejected_model": models[1]}
    return (prompt, chosen, rejected, ARENA_WINNERS[winner], None, _optional_text(row, "question_id"),
            _optional_text(row, "task_type") or _optional_text(row, "category"), extra)


def _csv(row: dict[str, Any]) -> Parsed:
    prompt = _text(row, "prompt", allow_empty=False)
    return (prompt, _text(row, "chosen"), _text(row, "rejected"), "chosen", _optional_float(row, "margin"),
            _optional_text(row, "id"), _optional_text(row, "task_type"), {})


PARSERS: dict[str, Callable[[dict[str, Any]], Parsed]] = {
    "hh-rlhf": _hh, "trl": _trl, "ultrafeedback": _ultrafeedback, "arena": _arena, "csv": _csv,
}


# ---------------------------------------------------------------------- the API
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
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read the file ({exc.strerror or exc}).") from None
    return parse_bytes(raw, str(path), fmt, task_type)


def parse_bytes(raw: bytes, name: str, fmt: str = "auto", task_type: str | None = None) -> ParsedImport:
    """``parse_file`` for a file's content (an upload); ``name`` is what errors call the file."""
    if fmt != "auto" and fmt not in FORMATS:
        raise ImportFormatError(f"--format: unknown format {fmt!r}; choose auto or one of {', '.join(FORMATS)}.")
    path = name
    raw = _decompress(path, raw)
    kind, rows = _rows(path, raw)
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


def embed_new_texts(db_path: str | Path, progress: bool = True) -> int:
    """Embed every prompt and response not embedded yet into the cache beside the database
    (the online trainer's ``embed_pending``), printing a progress line; returns how many."""
    from models.online import make_trainer

    store = Store(db_path)
    try:
        return make_trainer(db_path, progress=progress).embed_pending(store)
    finally:
        store.close()
