"""Per-annotator quality (gold accuracy, attention pass rate, latency, skips) and exclusion."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from acquisition.core.errors import ConfigError
from collector.serving.qc_settings import QC_KINDS, QCConfig, qc_config
from collector.store import Store
from collector.store.people import MAX_OBJECTIVE_CHARS

QUALITY_COLUMNS = [
    "annotator_id", "annotator", "group", "labels", "gold_seen", "gold_accuracy",
    "attention_seen", "attention_pass_rate", "repeats", "median_latency_ms", "skip_rate",
    "excluded", "reason", "warning",
]


def annotator_quality(store: Store, config: QCConfig | None = None) -> pd.DataFrame:
    """One row per annotator: labels given (every kind), gold pairs answered and the share
    answered as expected, attention checks answered and passed, repeats labelled, median
    latency of their labels, the share of served pairs they skipped, whether they are
    excluded and why, and a warning when a rate falls below the configured minimum.

    Accuracy and pass rates are NaN where the annotator has answered none; a tie or both-bad
    answer to a gold pair with a winner counts as wrong.
    """
    config = config or qc_config(store)
    counts: dict[tuple[int, str, str], tuple[int, int]] = {
        (r["annotator_id"], r["qc_kind"], r["status"]): (r["n"], r["as_expected"]) for r in store.quality_counts()
    }
    medians = store.median_latencies()

    def count(aid: int, kinds: tuple[str, ...], status: str, field: int = 0) -> int:
        return sum(counts.get((aid, kind, status), (0, 0))[field] for kind in kinds)

    rows = []
    for person in store.annotators():
        aid = person["id"]
        n = count(aid, QC_KINDS, "labelled")
        gold_seen, attention_seen = count(aid, ("gold",), "labelled"), count(aid, ("attention",), "labelled")
        gold_accuracy = count(aid, ("gold",), "labelled", 1) / gold_seen if gold_seen else math.nan
        attention_rate = count(aid, ("attention",), "labelled", 1) / attention_seen if attention_seen else math.nan
        n_skipped = count(aid, QC_KINDS, "skipped")
        warnings = []
        if gold_seen >= config.min_checks and gold_accuracy < config.min_gold_accuracy:
            warnings.append(f"gold accuracy {gold_accuracy:.2f} < {config.min_gold_accuracy:.2f}")
        if attention_seen >= config.min_checks and attention_rate < config.min_attention_pass_rate:
            warnings.append(f"attention {attention_rate:.2f} < {config.min_attention_pass_rate:.2f}")
        rows.append({
            "annotator_id": aid, "annotator": person["name"], "group": person["group_name"],
            "labels": n, "gold_seen": gold_seen, "gold_accuracy": float(gold_accuracy),
            "attention_seen": attention_seen, "attention_pass_rate": float(attention_rate),
            "repeats": count(aid, ("repeat",), "labelled"),
            "median_latency_ms": medians.get(aid, math.nan),
            "skip_rate": n_skipped / (n + n_skipped) if n + n_skipped else math.nan,
            "excluded": bool(person["excluded"]), "reason": person["excluded_reason"] or "",
            "warning": "; ".join(warnings),
        })
    return pd.DataFrame(rows, columns=QUALITY_COLUMNS)


def overlap_summary(store: Store) -> pd.DataFrame:
    """How many items (a regular pair with its repeats) have 0, 1, 2, ... labels."""
    counts = pd.DataFrame(store.item_label_counts(), columns=["item_id", "labels"])
    summary = counts.groupby("labels").size().rename("items").reset_index()
    return summary.astype({"labels": int, "items": int})


def exclude_annotator(store: Store, annotator_id: int, reason: str) -> dict[str, Any]:
    """Flag an annotator as excluded: their labels stay in the database, flagged, and leave
    training, effect estimates and the TRL export (the pairs export carries the flag)."""
    if not (reason or "").strip():
        raise ConfigError("annotator exclude: --reason must say why (it goes into the dataset card).")
    if len(reason.strip()) > MAX_OBJECTIVE_CHARS or "\n" in reason.strip() or not reason.isprintable():
        raise ConfigError(f"annotator exclude: --reason must be one printable line of at most {MAX_OBJECTIVE_CHARS} "
                          f"characters (it goes into the dataset card); got {len(reason):,} characters.")
    return store.set_annotator_excluded(annotator_id, True, reason.strip())


def include_annotator(store: Store, annotator_id: int) -> dict[str, Any]:
    """Undo an exclusion; the annotator's labels count again everywhere."""
    return store.set_annotator_excluded(annotator_id, False)
