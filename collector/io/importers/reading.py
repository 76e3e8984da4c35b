"""Reading an input file into numbered rows: JSON Lines, a JSON array, CSV or Parquet, gzipped
or not (detected from the bytes)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acquisition.core.errors import ImportFormatError


def read_input(path: str | Path) -> bytes:
    """A file's bytes, or an ``ImportFormatError`` saying why not (missing, a folder, unreadable)."""
    path = Path(path)
    if path.is_dir():
        raise ImportFormatError(f"{path}: is a folder, not a file.")
    if path.exists() and not path.is_file():
        raise ImportFormatError(f"{path}: is not a regular file (a pipe, socket or device).")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImportFormatError(f"{path}: no such file.") from None
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read the file ({exc.strerror or exc}).") from None


def read_rows(name: str, raw: bytes) -> tuple[str, Iterator[tuple[int, Any]]]:
    """``("json"|"csv", iterator of (line number, row))`` from a file's bytes, gzipped or not;
    every decoding and parsing error names ``name`` and the line."""
    return _rows(name, _decompress(name, raw))


def _open_binary(path: str):
    """The file as a binary stream of its decompressed bytes (gzip detected by its magic)."""
    read_input_checks(path)
    handle = open(path, "rb")
    if handle.read(2) == b"\x1f\x8b":
        handle.seek(0)
        return gzip.GzipFile(fileobj=handle, mode="rb")
    handle.seek(0)
    return handle


def read_input_checks(path: str | Path) -> None:
    """The checks of ``read_input`` without reading the file."""
    path = Path(path)
    if path.is_dir():
        raise ImportFormatError(f"{path}: is a folder, not a file.")
    if not path.exists():
        raise ImportFormatError(f"{path}: no such file.")
    if not path.is_file():  # a FIFO or a device would block the read, or never end
        raise ImportFormatError(f"{path}: is not a regular file (a pipe, socket or device).")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read the file ({exc.strerror or exc}).") from None


def _head(path: str, size: int = 65536) -> bytes:
    try:
        with _open_binary(path) as f:
            return f.read(size)
    except (OSError, EOFError) as exc:
        raise ImportFormatError(f"{path}: the file looks gzipped but cannot be decompressed ({exc}).") from None


def streamable_sha256(path: str) -> str | None:
    """The sha256 of the file's bytes if it is JSON Lines or CSV (which ``stream_rows`` reads
    line by line), else ``None`` (a JSON array, Parquet, or something whose error the
    whole-file reader words)."""
    head = _head(path)
    if head[:4] == b"PAR1":
        return None
    text = head.decode("utf-8-sig", errors="ignore").lstrip()
    if not text or text[0] == "[":
        return None
    if text[0] != "{" and path.lower().removesuffix(".gz").endswith((".jsonl", ".json", ".ndjson")):
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _text_lines(path: str) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line, decoded one line at a time so an invalid byte is
    reported on its own line, with its offset in the (decompressed) file."""
    offset = 0
    try:
        with _open_binary(path) as f:
            for number, raw in enumerate(f, start=1):
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise ImportFormatError(f"{path}, line {number}: not UTF-8 text ({exc.reason} at byte "
                                            f"{offset + exc.start}).") from None
                offset += len(raw)
                yield number, line
    except (OSError, EOFError) as exc:
        raise ImportFormatError(f"{path}: the file looks gzipped but cannot be decompressed ({exc}).") from None


def stream_rows(path: str) -> tuple[str, Iterator[tuple[int, Any]]]:
    """``read_rows`` for a JSON Lines or CSV file on disk, reading one line at a time."""
    head = _head(path).decode("utf-8-sig", errors="ignore").lstrip()
    if head[:1] == "{":
        return "json", _jsonl_lines(path, ((n, line.rstrip("\r\n")) for n, line in _text_lines(path)))
    return "csv", _csv_reader_rows(path, (line for _, line in _text_lines(path)))


def _jsonl_lines(path: str, lines: Iterator[tuple[int, str]]) -> Iterator[tuple[int, Any]]:
    for number, line in lines:
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(
                f"{path}, line {number}, column {exc.colno}: not valid JSON ({exc.msg})."
            ) from None
        except RecursionError:
            raise ImportFormatError(f"{path}, line {number}: JSON nested too deeply to read.") from None


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
    if path.lower().removesuffix(".gz").endswith((".jsonl", ".json", ".ndjson")):
        first = stripped.splitlines()[0][:40]
        raise ImportFormatError(f"{path}, line {text[:len(text) - len(stripped)].count(chr(10)) + 1}: not valid JSON "
                                f"(a JSON Lines file's lines start with '{{'; this one starts with {first!r}).")
    return "csv", _csv_rows(path, text)


def _jsonl_rows(path: str, text: str) -> Iterator[tuple[int, Any]]:
    # lines end at "\n" only: a JSON string may hold a raw U+2028 or form feed, which
    # str.splitlines() would wrongly treat as the end of the line
    return _jsonl_lines(path, ((n, line.rstrip("\r")) for n, line in enumerate(text.split("\n"), start=1)))


def _json_array_rows(path: str, text: str) -> Iterator[tuple[int, Any]]:
    """A JSON array of objects; each object's line is where it starts in the file."""
    decoder = json.JSONDecoder()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"{path}, line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}).") from None
    except RecursionError:
        raise ImportFormatError(f"{path}: JSON nested too deeply to read.") from None
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
    return _csv_reader_rows(path, io.StringIO(text, newline=""))


def _csv_reader_rows(path: str, lines) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise ImportFormatError(f"{path}, line 1: not valid CSV ({exc}).") from None
    header = [h.strip() for h in header]
    kaggle = {"prompt", "response_a", "response_b", "winner_model_a"} <= set(header)  # LMSYS Arena on Kaggle
    missing = [c for c in ("prompt", "chosen", "rejected") if c not in header]
    if missing and not kaggle:
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
