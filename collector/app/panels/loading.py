"""The dashboard's data: one row per served pair without texts, read on a read-only
connection (queries in ``collector/store/reads.py``), and the checkpoints' metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from acquisition.editors import DEFAULT_ATTRIBUTES, EDITORS
from collector.store import Store, read_edit_flag_codes, read_policy_configs, read_served_pair_codes
from models.checkpoints import Checkpoints

ATTRIBUTES = tuple(sorted(EDITORS))
REGULAR = ("regular", "repeat")  # quality-control kinds that are real labels of their item
EMPTY_COLOUR = "#d62728"  # overlap cells nobody labelled
SCOPES = {"overall": None, "annotator group": "annotator_group", "prompt type": "task_type",
          "shown objective": "objective"}



STATUS = {0: "unlabelled", 1: "labelled", 2: "skipped"}
CHOICE = {0: "left", 1: "right", 2: "tie", 3: "both_bad"}


def design_attributes(policy_configs: list[dict]) -> list[str]:
    """Attributes named anywhere in the stored policy configs (a list, a key, a component's
    config), plus the default set where a config leaves ``attributes`` empty: a policy can only
    randomise what it is configured with, so flags are read for these alone."""
    found: set[str] = set()

    def walk(value) -> None:
        if isinstance(value, dict):
            if "attributes" in value and not value["attributes"]:
                found.update(DEFAULT_ATTRIBUTES)
            for key, item in value.items():
                found.add(key)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            found.add(value)

    for config in policy_configs:
        walk(config)
    return [a for a in ATTRIBUTES if a in found]


def load_pairs(source: Store | str | Path, flags: bool = True) -> pd.DataFrame:
    """One row per served pair with the ``pairs_frame`` columns the panels use: ids, status,
    label, annotator (name, group at serving time, exclusion), prompt type, both response rows,
    policy and version as the pair recorded them, its ``family``,
    ``arm_propensity``, the label's time (UTC) and latency, quality-control
    kind, and with ``flags`` the ``left_<a>``/``right_<a>`` flags (True on, False off, NA not
    randomised), which take half the time (they are read from the edit-vector JSON).

    No texts; every column comes back from SQLite as a number (text columns as codes into their
    few distinct values) and becomes one numpy array, so 100,000 rows load in about a second.
    """
    raw = read_served_pair_codes(source)
    codes, groups, kinds = raw["codes"], raw["groups"], raw["kinds"]
    task_type = raw["task_type"]
    people = pd.DataFrame(raw["annotators"], columns=["id", "annotator", "excluded", "excluded_reason"]).set_index("id")
    m = np.array(codes, dtype=np.float64).reshape(len(codes), 18)  # (served pairs, columns)
    col = lambda i: m[:, i].astype(np.int64)  # noqa: E731
    annotator_id = col(3)
    person = people.reindex(annotator_id)
    df = pd.DataFrame({
        "served_pair_id": col(0),
        "status": pd.Categorical.from_codes(col(1), list(STATUS.values())),
        "label": pd.Categorical.from_codes(col(2), list(CHOICE.values())),
        "annotator_id": annotator_id,
        "annotator": pd.Categorical(person["annotator"].to_numpy()),
        "annotator_group": pd.Categorical.from_codes(col(4), groups),
        "excluded": person["excluded"].fillna(0).to_numpy().astype(bool),
        "excluded_reason": person["excluded_reason"].to_numpy(),
        "qc_kind": pd.Categorical.from_codes(col(5), kinds),
        "prompt_id": col(6),
        "task_type": pd.Categorical(pd.Series(col(6)).map(task_type)),
        "left_response_id": col(7), "right_response_id": col(8),
        "policy": pd.Categorical.from_codes(col(14), raw["policy_names"]).astype(object),  # as the pair recorded it
        "policy_version": col(9),
        "family": pd.Categorical.from_codes(col(15), raw["families"]),  # -1: served before families were recorded
        "arm": pd.Categorical.from_codes(col(16), raw["arms"]),
        "edit_marginals": pd.Categorical.from_codes(col(17), raw["marginals"]),  # the AMCE's design strata
        "arm_propensity": m[:, 10],
        "labelled_at": pd.to_datetime(np.where(m[:, 11] < 0, np.nan, m[:, 11]), unit="s", utc=True),
        "latency_ms": pd.array(np.where(m[:, 12] < 0, np.nan, m[:, 12]), dtype="Float64"),
        "objective": pd.Categorical.from_codes(col(13), raw["objectives"]),  # -1: none shown
    })
    if flags:
        upto = int(df["served_pair_id"].max()) if len(df) else 0
        df = with_flags(df, load_flags(source, upto))
    return df


def load_flags(source: Store | str | Path, upto: int) -> pd.DataFrame:
    """``left_<a>``/``right_<a>`` flags of every served pair with id up to ``upto``, indexed by
    ``served_pair_id`` (edit vectors never change, so flags read once stay right)."""
    configs = read_policy_configs(source)
    attributes = design_attributes(configs)
    rows = read_edit_flag_codes(source, attributes, upto)
    m = np.array(rows, dtype=np.int64).reshape(len(rows), 3)
    out = pd.DataFrame(index=pd.Index(m[:, 0], name="served_pair_id"))
    for side, i in (("left", 1), ("right", 2)):
        for a in ATTRIBUTES:
            digit = m[:, i] // 3 ** attributes.index(a) % 3 if a in attributes else np.zeros(len(m), np.int64)
            out[f"{side}_{a}"] = pd.arrays.BooleanArray(digit == 2, digit == 0)
    return out


def with_flags(pairs: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
    """``pairs`` with the flag columns of ``load_flags`` joined on ``served_pair_id``."""
    aligned = flags.reindex(pairs["served_pair_id"].to_numpy())
    return pd.concat([pairs.reset_index(drop=True), aligned.reset_index(drop=True)], axis=1)


def randomised(pairs: pd.DataFrame) -> list[str]:
    """Attributes some pair randomised (switched on or off by a draw) on both sides."""
    return [a for a in ATTRIBUTES if f"left_{a}" in pairs.columns
            and (pairs[f"left_{a}"].notna() & pairs[f"right_{a}"].notna()).any()]


def regular_labels(pairs: pd.DataFrame) -> pd.DataFrame:
    """Every label (both-bad included) on a regular pair or a repeat, from included annotators."""
    keep = pairs["label"].notna() & pairs["qc_kind"].fillna("regular").isin(REGULAR)
    return pairs[keep & ~pairs["excluded"].fillna(False).astype(bool)]


def data_version(store: Store) -> tuple:
    """A cheap key that moves when the dashboard's data does: label and served-pair counts and
    the excluded annotators (cache loads on it, with a TTL for skips)."""
    counts = store.counts()
    excluded = tuple(a["id"] for a in store.annotators() if a.get("excluded"))
    return counts["labels"], counts["served_pairs"], excluded


def load_checkpoints(checkpoints: Checkpoints) -> pd.DataFrame:
    """One row per published checkpoint with its metrics, in version order."""
    rows = []
    for version in checkpoints.versions():
        try:
            rows.append({"version": int(version[1:]), **checkpoints.metrics(version)})
        except (OSError, json.JSONDecodeError):
            continue  # a checkpoint being written; the next refresh reads it
    return pd.DataFrame(rows).sort_values("version", ignore_index=True) if rows else pd.DataFrame(columns=["version"])
