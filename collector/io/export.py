"""Export the collection: TRL preference rows (standard or conversational), Chatbot Arena
battles, or the full served-pair log, as JSON Lines or Parquet (the extension chooses).

Every format carries the assignment mechanism (policy, version, arm, ``propensity_score``,
edit vectors, display position) so an analysis downstream never has to guess it, and every
export is written with a dataset card beside it (``<out>.card.md``, ``collector/io/card.py``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from acquisition.core.errors import ConfigError
from acquisition.core.turns import standard_prompt
from collector.io.card import build_card
from collector.io.frames import (
    ARENA_MODELS,
    FORMATS,
    FRAMES,
    arena_frame,
    pairs_frame,
    trl_conversational_frame,
    trl_frame,
    with_imported,
)
from collector.io.schema import arrow_table
from collector.store import Store


def card_path(out: str | Path) -> Path:
    """Where an export's dataset card goes: beside it, ``<out>.card.md``."""
    out = Path(out)
    return out.with_name(out.name + ".card.md")


def export_frames(store: Store, fmt: str, arena_models: str = "source",
                  include_imported: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(rows of the format, pairs_frame)``: the served-pair log is read once for both;
    ``arena_models`` says what the Arena format's ``model_a``/``model_b`` name (``arena_frame``)."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    if arena_models not in ARENA_MODELS:
        raise ConfigError(f"--arena-models: must be one of {', '.join(ARENA_MODELS)}; got {arena_models!r}.")
    pairs = pairs_frame(store)
    if fmt == "arena":
        return arena_frame(pairs, arena_models), pairs
    if include_imported:
        if fmt not in ("trl", "trl-conversational"):
            raise ConfigError(f"--include-imported: only the trl formats carry imported preferences, not {fmt!r}.")
        rows = with_imported(trl_frame(pairs), store)
        return (standard_form(rows) if fmt == "trl" else trl_conversational_frame(pairs, rows)), pairs
    rows = FRAMES[fmt](pairs)
    return (standard_form(rows) if fmt == "trl" else rows), pairs


def standard_form(rows: pd.DataFrame) -> pd.DataFrame:
    """The ``trl`` rows with ``prompt`` in the form TRL's standard format needs: TRL reads
    ``prompt + chosen`` as one text, so the prompt ends where the answer starts
    (``acquisition.core.turns.standard_prompt``); ``train-rm`` trains on the same text."""
    return rows.assign(prompt=[standard_prompt(p) for p in rows["prompt"]]) if len(rows) else rows


EXPORT_BATCH_ROWS = 1000  # rows encoded at a time: the file is written in batches, never held whole


def _arrow_schema(df: pd.DataFrame) -> Any:
    """The export's Arrow schema, inferred from each column's first value (a column with none
    takes its declared type, ``arrow_table``), so every batch is written with the same one."""
    positions = {0} | {int(df.index.get_indexer([i])[0]) for c in df.columns
                       if (i := df[c].first_valid_index()) is not None}
    return arrow_table(df.iloc[sorted(positions)]).schema


def write_frame(df: pd.DataFrame, f: BinaryIO, ext: str) -> None:
    """Write ``df`` to ``f`` as ``jsonl`` or ``parquet``, ``EXPORT_BATCH_ROWS`` rows at a time
    (pandas' whole-frame JSON encoder held about 50 times the output's size at once)."""
    batches = [df.iloc[start:start + EXPORT_BATCH_ROWS] for start in range(0, len(df), EXPORT_BATCH_ROWS)]
    if ext == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _arrow_schema(df)
        with pq.ParquetWriter(f, schema) as writer:
            for batch in batches or [df]:
                writer.write_table(pa.Table.from_pandas(batch, schema=schema, preserve_index=False))
        return
    for batch in batches:
        text = batch.to_json(orient="records", lines=True, force_ascii=False)
        f.write(text.encode("utf-8") if text.endswith("\n") else (text + "\n").encode("utf-8"))


def frame_bytes(df: pd.DataFrame, ext: str) -> bytes:
    """A frame as the bytes of a ``jsonl`` or ``parquet`` file (a download button's content)."""
    buffer = io.BytesIO()
    write_frame(df, buffer, ext)
    return buffer.getvalue()


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
    df, pairs = export_frames(store, fmt, arena_models, include_imported)
    with staged([out, card_path(out)] if card else [out]) as temporary:
        with open(temporary[out], "wb") as f:
            write_frame(df, f, out.suffix[1:])
        if card:
            text = build_card(store, pairs, fmt=fmt, export_name=out.name, rows=len(df), frame=df,
                              arena_models=arena_models, num_bytes=temporary[out].stat().st_size)
            temporary[card_path(out)].write_bytes(text.encode("utf-8"))
    return len(df)


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
    df, pairs = export_frames(store, fmt, arena_models, include_imported)
    with tempfile.TemporaryDirectory(dir=folder.parent if folder.parent.exists() else None) as tmp:
        staging = Path(tmp) / "hub"
        (staging / "data").mkdir(parents=True)
        with open(staging / "data" / "train.parquet", "wb") as f:
            write_frame(df, f, "parquet")
        card = build_card(store, pairs, fmt=fmt, export_name="data/train.parquet", rows=len(df), frame=df,
                          data_files="data/train.parquet", arena_models=arena_models,
                          num_bytes=(staging / "data" / "train.parquet").stat().st_size)
        (staging / "README.md").write_text(card, encoding="utf-8")
        folder.parent.mkdir(parents=True, exist_ok=True)
        if folder.exists():
            folder.rmdir()
        os.replace(staging, folder)
    return len(df)


def export_bytes(store: Store, fmt: str, ext: str) -> bytes:
    """One export's file content (``ext`` ``jsonl`` or ``parquet``), for a download button."""
    if ext not in ("jsonl", "parquet"):
        raise ConfigError(f"file type {ext!r}: choose jsonl or parquet.")
    df, _pairs = export_frames(store, fmt)
    return frame_bytes(df, ext)
