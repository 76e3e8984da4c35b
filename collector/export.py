"""Export the collection: TRL preference rows, or the full served-pair log.

Both formats carry the assignment mechanism (policy, version, arm, ``propensity_score``,
edit vectors, display position) so an analysis downstream never has to guess it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from acquisition.editors import EDITORS
from collector.errors import ConfigError
from collector.store import Store

FORMATS = ("trl", "pairs")


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds")


def _flags(edit_vector: dict[str, Any], prefix: str) -> dict[str, Any]:
    """One nullable boolean column per known attribute: on, off, or not randomised (None)."""
    return {
        f"{prefix}_{a}": (bool(edit_vector[a]["on"]) if a in edit_vector else None)
        for a in sorted(EDITORS)
    }


def pairs_frame(store: Store) -> pd.DataFrame:
    """Every served pair, labelled or not, one row each."""
    rows = []
    for r in store.served_pair_log():
        left_ev, right_ev = json.loads(r["left_edit_vector"]), json.loads(r["right_edit_vector"])
        status = r["status"]
        if status == "served":
            status = "unlabelled"
        rows.append({
            "served_pair_id": r["id"], "status": status, "label": r["choice"],
            "strength": r["strength"], "rationale": r["rationale"],
            "annotator_id": r["annotator_id"], "annotator_group": r["annotator_group"],
            "annotator_objective": r["annotator_objective"],
            "annotator_covariates": r["annotator_covariates"],
            "prompt_id": r["prompt_id"], "task_type": r["task_type"], "prompt": r["prompt"],
            "left_response_id": r["left_response_id"], "right_response_id": r["right_response_id"],
            "left_base_response_id": r["left_base_response_id"],
            "right_base_response_id": r["right_base_response_id"],
            "left_text": r["left_text"], "right_text": r["right_text"],
            "left_edit_vector": r["left_edit_vector"], "right_edit_vector": r["right_edit_vector"],
            "position_swapped": bool(r["position_swapped"]),
            "policy": r["policy_name"], "policy_version": r["policy_version"], "arm": r["arm"],
            "propensity_score": r["propensity_score"], "arm_propensity": r["arm_propensity"],
            "acquisition_score": r["acquisition_score"], "model_version": r["model_version"],
            "seed": r["seed"],
            "served_at": _iso(r["served_at"]), "labelled_at": _iso(r["labelled_at"]),
            "skipped_at": _iso(r["skipped_at"]), "latency_ms": r["latency_ms"],
            **_flags(left_ev, "left"), **_flags(right_ev, "right"),
        })
    return _typed(pd.DataFrame(rows, columns=_pairs_columns()))


def _pairs_columns() -> list[str]:
    base = [
        "served_pair_id", "status", "label", "strength", "rationale", "annotator_id",
        "annotator_group", "annotator_objective", "annotator_covariates", "prompt_id",
        "task_type", "prompt", "left_response_id", "right_response_id", "left_base_response_id",
        "right_base_response_id", "left_text", "right_text", "left_edit_vector",
        "right_edit_vector", "position_swapped", "policy", "policy_version", "arm",
        "propensity_score", "arm_propensity", "acquisition_score", "model_version", "seed",
        "served_at", "labelled_at", "skipped_at", "latency_ms",
    ]
    return base + [f"{s}_{a}" for s in ("left", "right") for a in sorted(EDITORS)]


def trl_frame(store: Store) -> pd.DataFrame:
    """Labelled pairs with a winner as TRL preference rows; ties and both-bad are left out."""
    pairs = pairs_frame(store)
    rows = []
    for r in pairs[pairs["label"].isin(["left", "right"])].to_dict("records"):
        win, lose = ("left", "right") if r["label"] == "left" else ("right", "left")
        row = {
            "prompt": r["prompt"], "chosen": r[f"{win}_text"], "rejected": r[f"{lose}_text"],
            "served_pair_id": r["served_pair_id"], "prompt_id": r["prompt_id"],
            "task_type": r["task_type"],
            "chosen_response_id": r[f"{win}_response_id"],
            "rejected_response_id": r[f"{lose}_response_id"],
            "chosen_position": win,
            "chosen_edit_vector": r[f"{win}_edit_vector"],
            "rejected_edit_vector": r[f"{lose}_edit_vector"],
            "strength": r["strength"], "rationale": r["rationale"],
            "annotator_id": r["annotator_id"], "annotator_group": r["annotator_group"],
            "policy": r["policy"], "policy_version": r["policy_version"], "arm": r["arm"],
            "propensity_score": r["propensity_score"], "arm_propensity": r["arm_propensity"],
            "model_version": r["model_version"], "labelled_at": r["labelled_at"],
            "latency_ms": r["latency_ms"],
        }
        for a in sorted(EDITORS):
            row[f"chosen_{a}"] = r[f"{win}_{a}"]
            row[f"rejected_{a}"] = r[f"{lose}_{a}"]
        rows.append(row)
    columns = [
        "prompt", "chosen", "rejected", "served_pair_id", "prompt_id", "task_type",
        "chosen_response_id", "rejected_response_id", "chosen_position", "chosen_edit_vector",
        "rejected_edit_vector", "strength", "rationale", "annotator_id", "annotator_group",
        "policy", "policy_version", "arm", "propensity_score", "arm_propensity",
        "model_version", "labelled_at", "latency_ms",
    ] + [f"{s}_{a}" for a in sorted(EDITORS) for s in ("chosen", "rejected")]
    return _typed(pd.DataFrame(rows, columns=columns))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """Stable dtypes so JSONL and Parquet agree and empty exports still load."""
    for col in df.columns:
        if col.startswith(("left_", "right_", "chosen_", "rejected_")) and col.split("_", 1)[1] in EDITORS:
            df[col] = df[col].astype("boolean")
    for col in ("strength", "latency_ms", "acquisition_score"):
        if col in df.columns:
            df[col] = df[col].astype("Float64" if col == "acquisition_score" else "Int64")
    return df


def export(store: Store, fmt: str, out: str | Path) -> int:
    """Write ``fmt`` (``trl`` or ``pairs``) to ``out`` (``.jsonl`` or ``.parquet``); returns the row count."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    out = Path(out)
    if out.suffix not in (".jsonl", ".parquet"):
        raise ConfigError(f"--out {out}: the file name must end in .jsonl or .parquet.")
    df = trl_frame(store) if fmt == "trl" else pairs_frame(store)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        df.to_parquet(out, index=False)
    else:
        df.to_json(out, orient="records", lines=True, force_ascii=False)
    return len(df)
