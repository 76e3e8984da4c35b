"""Export the collection: TRL preference rows (standard or conversational), Chatbot Arena
battles, or the full served-pair log, as JSON Lines or Parquet (the extension chooses).

Every format carries the assignment mechanism (policy, version, arm, ``propensity_score``,
edit vectors, display position) so an analysis downstream never has to guess it, and every
export is written with a dataset card beside it (``<out>.card.md``, ``collector/io/card.py``).
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from acquisition.core.errors import ConfigError
from collector.io.card import build_card
from collector.io.frames import FORMATS, FRAMES, pairs_frame
from collector.store import Store


def card_path(out: str | Path) -> Path:
    """Where an export's dataset card goes: beside it, ``<out>.card.md``."""
    out = Path(out)
    return out.with_name(out.name + ".card.md")


def export_frames(store: Store, fmt: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(rows of the format, pairs_frame)``: the served-pair log is read once for both."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    pairs = pairs_frame(store)
    return FRAMES[fmt](pairs), pairs


def write_frame(df: pd.DataFrame, out: str | Path) -> None:
    """``.parquet`` as Parquet, ``.jsonl`` as JSON Lines."""
    out = Path(out)
    if out.suffix not in (".jsonl", ".parquet"):
        raise ConfigError(f"--out {out}: the file name must end in .jsonl or .parquet.")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        df.to_parquet(out, index=False)
    else:
        df.to_json(out, orient="records", lines=True, force_ascii=False)


def export(store: Store, fmt: str, out: str | Path, card: bool = True) -> int:
    """Write ``fmt`` (one of ``FORMATS``) to ``out`` (``.jsonl`` or ``.parquet``) and, unless
    ``card=False``, the dataset card beside it (``card_path(out)``); returns the row count."""
    out = Path(out)
    if out.suffix not in (".jsonl", ".parquet"):
        raise ConfigError(f"--out {out}: the file name must end in .jsonl or .parquet.")
    df, pairs = export_frames(store, fmt)
    write_frame(df, out)
    if card:
        card_path(out).write_text(build_card(store, pairs, fmt=fmt, export_name=out.name, rows=len(df)),
                                  encoding="utf-8")
    return len(df)


def export_bytes(store: Store, fmt: str, ext: str) -> bytes:
    """One export's file content (``ext`` ``jsonl`` or ``parquet``), for a download button."""
    if ext not in ("jsonl", "parquet"):
        raise ConfigError(f"file type {ext!r}: choose jsonl or parquet.")
    df, _pairs = export_frames(store, fmt)
    if ext == "parquet":
        buffer = io.BytesIO()
        df.to_parquet(buffer, index=False)
        return buffer.getvalue()
    return df.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8")
