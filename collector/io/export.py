"""Export the collection: TRL preference rows (standard or conversational), Chatbot Arena
battles, or the full served-pair log, as JSON Lines or Parquet (the extension chooses).

Every format carries the assignment mechanism (policy, version, arm, ``propensity_score``,
edit vectors, display position) so an analysis downstream never has to guess it, and every
export is written with a dataset card beside it (``<out>.card.md``, ``collector/io/card.py``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from acquisition.core.errors import ConfigError, DeconfoundError
from acquisition.core.turns import standard_prompt
from acquisition.editors import EDITORS
from collector.io.card import build_card, style_differences
from collector.io.frames import (
    ARENA_MODELS,
    FORMATS,
    FRAMES,
    arena_frame,
    card_frame,
    empty_pairs_frame,
    imported_trl_frame,
    imported_trl_rows,
    pairs_batches,
    pairs_frame,
    trl_conversational_frame,
    trl_frame,
    trl_weights,
    with_imported,
)
from collector.io.schema import arrow_table, schema_features
from collector.store import Store


def card_path(out: str | Path) -> Path:
    """Where an export's dataset card goes: beside it, ``<out>.card.md``."""
    out = Path(out)
    return out.with_name(out.name + ".card.md")


def _check_format(fmt: str, arena_models: str, include_imported: bool) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"--format: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    if arena_models not in ARENA_MODELS:
        raise ConfigError(f"--arena-models: must be one of {', '.join(ARENA_MODELS)}; got {arena_models!r}.")
    if include_imported and fmt not in ("trl", "trl-conversational"):
        raise ConfigError(f"--include-imported: only the trl formats carry imported preferences, not {fmt!r}.")


def export_frames(store: Store, fmt: str, arena_models: str = "source",
                  include_imported: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(rows of the format, pairs_frame)``, each whole in memory (for a notebook);
    ``export`` writes the same rows a batch at a time (``format_batches``). ``arena_models``
    says what the Arena format's ``model_a``/``model_b`` name (``arena_frame``)."""
    _check_format(fmt, arena_models, include_imported)
    pairs = pairs_frame(store)
    if fmt == "arena":
        return arena_frame(pairs, arena_models), pairs
    if include_imported:
        rows = with_imported(trl_frame(pairs), store)
        return (standard_form(rows) if fmt == "trl" else trl_conversational_frame(pairs, rows)), pairs
    rows = FRAMES[fmt](pairs)
    return (standard_form(rows) if fmt == "trl" else rows), pairs


def format_rows(pairs: pd.DataFrame, fmt: str, arena_models: str = "source",
                weights: pd.Series | None = None) -> pd.DataFrame:
    """The rows of ``fmt`` from (a batch of) a ``pairs_frame``; ``weights``: the whole export's
    TRL weights by served pair (``trl_weights``), which one batch cannot compute."""
    if fmt == "arena":
        return arena_frame(pairs, arena_models)
    if fmt in ("trl", "trl-conversational"):
        rows = trl_frame(pairs, weights=weights)
        return standard_form(rows) if fmt == "trl" else trl_conversational_frame(pairs, rows)
    return FRAMES[fmt](pairs)


@dataclass
class Streamed:
    """What ``format_batches`` saw on its way through the log, for the card: the pairs frame
    without texts (``card_frame``), kept column by column, the number of rows written, and the
    Arena style counts."""

    columns: dict[str, list[pd.Series]] = field(default_factory=dict)
    rows: int = 0
    style: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, frame: pd.DataFrame) -> None:
        for column in frame.columns:
            self.columns.setdefault(column, []).append(frame[column].copy())  # owns its memory

    def card_pairs(self) -> pd.DataFrame:
        """The batches as one frame, built a column at a time, each column's batches let go as
        it is joined (so the frame is about the only copy, never two), and without the four
        flag columns of an attribute that no pair randomised (all null: the card reads a missing
        column as it reads a null one)."""
        if not self.columns:
            return card_frame(empty_pairs_frame())
        columns, self.columns = self.columns, {}
        unused = {a for a in EDITORS if all(
            all(part.isna().all() for part in columns.get(f"{s}_{a}{x}", []))
            for s in ("left", "right") for x in ("", "_assigned"))}
        data = {}
        for name in list(columns):
            parts = columns.pop(name)
            if name.startswith(("left_", "right_")) and name.split("_", 1)[1].removesuffix("_assigned") in unused:
                continue
            data[name] = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
            del parts
        return pd.DataFrame(data, copy=False)  # no consolidation into blocks: no second copy

    def style_differences(self) -> dict[str, np.ndarray]:
        return {e: np.concatenate(parts) if parts else np.zeros(0) for e, parts in self.style.items()}


def format_batches(store: Store, fmt: str, arena_models: str = "source", include_imported: bool = False,
                   seen: Streamed | None = None) -> Iterator[pd.DataFrame]:
    """The export's rows a batch of served pairs at a time, in id order (imported preferences
    last): ``export_frames``' rows without the whole log in memory. ``seen`` collects what the
    card needs. Call it inside ``Store.snapshot`` so every batch and the card read one state."""
    _check_format(fmt, arena_models, include_imported)
    weights = trl_weights(store) if fmt in ("trl", "trl-conversational") else None
    interned: dict[str, dict[Any, Any]] = {}
    produced = False
    for batch in pairs_batches(store):
        if seen is not None:
            seen.add(card_frame(batch, interned))
        rows = format_rows(batch, fmt, arena_models, weights)
        if fmt == "arena" and seen is not None:
            for element, diff in style_differences(rows).items():
                seen.style.setdefault(element, []).append(diff)
        if len(rows):
            produced = True
            if seen is not None:
                seen.rows += len(rows)
            yield rows
    if include_imported:
        imported = imported_trl_frame(store)
        if len(imported):
            rows = imported_trl_rows(imported)
            rows = standard_form(rows) if fmt == "trl" else trl_conversational_frame(empty_pairs_frame(), rows)
            produced = True
            if seen is not None:
                seen.rows += len(rows)
            yield rows
    if not produced:  # an empty export still has every column, typed
        if fmt == "arena" and seen is not None:
            seen.style = {e: [] for e in style_differences(format_rows(empty_pairs_frame(), fmt, arena_models))}
        yield format_rows(empty_pairs_frame(), fmt, arena_models)


def standard_form(rows: pd.DataFrame) -> pd.DataFrame:
    """The ``trl`` rows with ``prompt`` in the form TRL's standard format needs: TRL reads
    ``prompt + chosen`` as one text, so the prompt ends where the answer starts
    (``acquisition.core.turns.standard_prompt``); ``train-rm`` trains on the same text."""
    return rows.assign(prompt=[standard_prompt(p) for p in rows["prompt"]]) if len(rows) else rows


EXPORT_BATCH_ROWS = 1000  # rows encoded at a time: the file is written in batches, never held whole
PARQUET_BATCH_ROWS = 5000  # rows per Parquet row group at most (a log batch's rows: fewer, larger groups)


def write_batches(batches: Iterable[pd.DataFrame], f: BinaryIO, ext: str) -> list[dict[str, Any]]:
    """Write frames of one export to ``f`` as ``jsonl`` or ``parquet``, ``EXPORT_BATCH_ROWS``
    rows at a time (pandas' whole-frame JSON encoder held about 50 times the output's size at
    once); returns the file's features as the Hub's card lists them. Every batch is written
    with the first one's Arrow schema (``collector.io.schema``: a column with no value there
    takes its declared type); a later batch whose column has another type is an error, not a
    silent cast."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = None
    writer = None
    try:
        for frame in batches:
            step = PARQUET_BATCH_ROWS if ext == "parquet" else EXPORT_BATCH_ROWS
            for start in range(0, max(len(frame), 1), step):
                batch = frame.iloc[start:start + step]
                if not len(batch) and schema is not None:
                    continue
                table = arrow_table(batch) if ext == "parquet" or schema is None else None
                if schema is None:
                    assert table is not None
                    schema = table.schema
                    if ext == "parquet":
                        writer = pq.ParquetWriter(f, schema)
                if ext == "parquet":
                    assert table is not None and writer is not None
                    writer.write_table(_conform(table, schema, pa))
                elif len(batch):
                    text = batch.to_json(orient="records", lines=True, force_ascii=False)
                    f.write(text.encode("utf-8") if text.endswith("\n") else (text + "\n").encode("utf-8"))
    finally:
        if writer is not None:
            writer.close()
    return schema_features(schema) if schema is not None else []


def _conform(table: Any, schema: Any, pa: Any) -> Any:
    """``table`` with ``schema``'s types: a column all null in either takes the other's type."""
    if table.schema == schema:
        return table
    for name in schema.names:
        have, want = table.schema.field(name).type, schema.field(name).type
        if have != want and table.column(name).null_count != len(table) and not pa.types.is_null(want):
            raise DeconfoundError(f"export: column {name!r} is {have} in a later batch but {want} in the first; "
                                  "this is a bug in the export's declared types (collector/io/schema.py).")
    return table.cast(schema)


def write_frame(df: pd.DataFrame, f: BinaryIO, ext: str) -> None:
    """Write ``df`` to ``f`` as ``jsonl`` or ``parquet`` (``write_batches`` of one frame)."""
    write_batches([df], f, ext)


def check_out_path(out: Path) -> None:
    """An export path that can be written: ``.jsonl`` or ``.parquet``, not a folder, in a folder
    (made if missing) that is not a file, with the card's path free too."""
    if out.suffix not in (".jsonl", ".parquet"):
        raise ConfigError(f"--out {out}: the file name must end in .jsonl or .parquet.")
    for path in (out, card_path(out)):
        if path.is_dir():
            raise ConfigError(f"--out {out}: {path} is a folder; give a file name.")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"--out {out}: {parent} is a file, not a folder.")


def refuse_onto_database(store: Store, paths: list[Path]) -> None:
    """No output may resolve (symlinks followed) onto the database, its WAL or its shared memory."""
    if store.path == ":memory:":
        return
    database = Path(store.path).resolve()
    guarded = {database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")}
    for path in paths:
        if path.resolve() in guarded:
            raise ConfigError(f"--out {path}: resolves to the database {database} itself; choose another file "
                              "(nothing was written).")


@contextmanager
def staged(paths: list[Path]) -> Iterator[dict[Path, Path]]:
    """Temporary names beside ``paths`` to write to; when the block ends without an error they
    are renamed into place together, else removed: every file or none, and nothing existing is
    touched by a failed write (a full disk, a file-size limit: one error naming the file)."""
    temporary = {path: path.with_name(f".{path.name}.{os.getpid()}.tmp") for path in paths}
    owner = {str(tmp): path for path, tmp in temporary.items()}
    try:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
        yield temporary
        for path, tmp in temporary.items():
            os.replace(tmp, path)
    except OSError as exc:
        where = owner.get(str(exc.filename), exc.filename) or paths[0]
        raise ConfigError(f"cannot write {where}: {exc.strerror or exc} (nothing was written).") from None
    finally:
        for tmp in temporary.values():
            tmp.unlink(missing_ok=True)


def write_files(files: dict[Path, bytes]) -> None:
    """Write every file or none (``staged``)."""
    with staged(list(files)) as temporary:
        for path, data in files.items():
            temporary[path].write_bytes(data)


def export(store: Store, fmt: str, out: str | Path, card: bool = True, arena_models: str = "source",
           include_imported: bool = False) -> int:
    """Write ``fmt`` (one of ``FORMATS``) to ``out`` (``.jsonl`` or ``.parquet``) and, unless
    ``card=False``, the dataset card beside it (``card_path(out)``), both or neither; returns the
    row count."""
    out = Path(out)
    check_out_path(out)
    refuse_onto_database(store, [out, card_path(out)] if card else [out])
    _check_format(fmt, arena_models, include_imported)
    seen = Streamed()
    with store.snapshot(), staged([out, card_path(out)] if card else [out]) as temporary:
        with open(temporary[out], "wb") as f:
            features = write_batches(format_batches(store, fmt, arena_models, include_imported, seen), f,
                                     out.suffix[1:])
        if card:
            text = build_card(store, seen.card_pairs(), fmt=fmt, export_name=out.name, rows=seen.rows,
                              features=features, style=seen.style_differences() if fmt == "arena" else None,
                              arena_models=arena_models, num_bytes=temporary[out].stat().st_size)
            temporary[card_path(out)].write_bytes(text.encode("utf-8"))
    return seen.rows


def export_hub(store: Store, fmt: str, folder: str | Path, arena_models: str = "source",
               include_imported: bool = False) -> int:
    """A Hub-ready folder: ``README.md`` (the card with its YAML front matter: license, languages,
    the data file, its features and the split's rows and bytes) and the data once, as
    ``data/train.parquet`` (one file, one split; ``load_dataset(DIR)`` reads it). Written in a
    staging folder and renamed into place: everything or nothing. The folder must be new or empty."""
    import tempfile

    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(f"--hub {folder}: must be a new or empty folder.")
    _check_format(fmt, arena_models, include_imported)
    seen = Streamed()
    with store.snapshot(), tempfile.TemporaryDirectory(dir=folder.parent if folder.parent.exists() else None) as tmp:
        staging = Path(tmp) / "hub"
        (staging / "data").mkdir(parents=True)
        with open(staging / "data" / "train.parquet", "wb") as f:
            features = write_batches(format_batches(store, fmt, arena_models, include_imported, seen), f, "parquet")
        card = build_card(store, seen.card_pairs(), fmt=fmt, export_name="data/train.parquet", rows=seen.rows,
                          features=features, style=seen.style_differences() if fmt == "arena" else None,
                          data_files="data/train.parquet", arena_models=arena_models,
                          num_bytes=(staging / "data" / "train.parquet").stat().st_size)
        (staging / "README.md").write_text(card, encoding="utf-8")
        folder.parent.mkdir(parents=True, exist_ok=True)
        if folder.exists():
            folder.rmdir()
        os.replace(staging, folder)
    return seen.rows


def export_bytes(store: Store, fmt: str, ext: str) -> bytes:
    """One export's file content (``ext`` ``jsonl`` or ``parquet``), for a download button."""
    if ext not in ("jsonl", "parquet"):
        raise ConfigError(f"file type {ext!r}: choose jsonl or parquet.")
    buffer = io.BytesIO()
    with store.snapshot():
        write_batches(format_batches(store, fmt), buffer, ext)
    return buffer.getvalue()
