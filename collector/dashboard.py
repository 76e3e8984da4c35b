"""The researcher dashboard: the data it reads and pure ``build_*_figure(df) -> Figure`` functions.

No Streamlit here. ``load_pairs`` reads one row per served pair with the columns (and names)
of ``collector.export.pairs_frame`` that the panels use, but without texts or edit-vector
JSON: ``pairs_frame`` takes about 8 s on 100,000 labels, mostly carrying texts the dashboard
never shows. Its queries live in ``collector/store.py`` (``read_*``) and run on a read-only
SQLite connection of their own (WAL readers never block the writer), so a dashboard refresh
never holds the ``Store`` lock that serving and labelling take.

Panels: progress (labels over time by group and annotator, median latency, skip and both-bad
rates), effects (``acquisition.effects.amce`` overall, by annotator group, by prompt type),
balance between arms (``acquisition.balance.arm_balance``), overlap (labelled counts over
attribute combinations x prompt types x groups, empty cells shown), model checkpoints
(``metrics.json`` of each ``v<N>``) and agreement (Krippendorff's alpha and pairwise agreement).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from acquisition.balance import arm_balance
from acquisition.editors import DEFAULT_ATTRIBUTES, EDITORS
from acquisition.effects import amce, labelled_pairs
from collector.store import Store, read_edit_flag_codes, read_policy_configs, read_served_pair_codes

ATTRIBUTES = tuple(sorted(EDITORS))
REGULAR = ("regular", "repeat")  # quality-control kinds that are real labels of their item
EMPTY_COLOUR = "#d62728"  # overlap cells nobody labelled
SCOPES = {"overall": None, "annotator group": "annotator_group", "prompt type": "task_type"}


# ---------------------------------------------------------------------- data
STATUS = {0: "unlabelled", 1: "labelled", 2: "skipped"}
CHOICE = {0: "left", 1: "right", 2: "tie", 3: "both_bad"}


def design_attributes(policy_configs: list[str]) -> list[str]:
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
        walk(json.loads(config))
    return [a for a in ATTRIBUTES if a in found]


def load_pairs(source: Store | str | Path, flags: bool = True) -> pd.DataFrame:
    """One row per served pair with the ``pairs_frame`` columns the panels use: ids, status,
    label, annotator (name, group at serving time, exclusion), prompt type, both response rows,
    policy and version, ``arm_propensity``, the label's time (UTC) and latency, quality-control
    kind, and with ``flags`` the ``left_<a>``/``right_<a>`` flags (True on, False off, NA not
    randomised), which take half the time (they are read from the edit-vector JSON).

    No texts; every column comes back from SQLite as a number (text columns as codes into their
    few distinct values) and becomes one numpy array, so 100,000 rows load in about a second.
    """
    raw = read_served_pair_codes(source)
    codes, groups, kinds = raw["codes"], raw["groups"], raw["kinds"]
    task_type, policy = raw["task_type"], raw["policy"]
    people = pd.DataFrame(raw["annotators"], columns=["id", "annotator", "excluded", "excluded_reason"]).set_index("id")
    m = np.array(codes, dtype=np.float64).reshape(len(codes), 13)  # (served pairs, columns)
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
        "policy": pd.Series(col(9)).map(policy), "policy_version": col(9),  # text: amce keys on it
        "arm_propensity": m[:, 10],
        "labelled_at": pd.to_datetime(np.where(m[:, 11] < 0, np.nan, m[:, 11]), unit="s", utc=True),
        "latency_ms": pd.array(np.where(m[:, 12] < 0, np.nan, m[:, 12]), dtype="Float64"),
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


def checkpoints_dir(db_path: str | Path) -> Path:
    """Where the online trainer publishes ``v<N>/`` beside the database (as
    ``models.online.models_dir_for``, without importing torch into the page)."""
    return Path(db_path).resolve().parent / "models"


def load_checkpoints(models_dir: str | Path) -> pd.DataFrame:
    """One row per published checkpoint ``v<N>/metrics.json``, in version order."""
    rows = []
    for path in Path(models_dir).glob("v*/metrics.json"):
        if path.parent.name[1:].isdigit():
            try:
                rows.append({"version": int(path.parent.name[1:]), **json.loads(path.read_text())})
            except (OSError, json.JSONDecodeError):
                continue  # a checkpoint being written; the next refresh reads it
    return pd.DataFrame(rows).sort_values("version", ignore_index=True) if rows else pd.DataFrame(columns=["version"])


# ---------------------------------------------------------------------- tables
def _bin_seconds(epoch_ns: np.ndarray) -> int:
    """A time bin (1 min, 10 min, 1 h, 6 h or 1 day) giving at most ~150 points over the span."""
    span = (epoch_ns.max() - epoch_ns.min()) / 1e9 if len(epoch_ns) else 0
    return next((s for s in (60, 600, 3600, 21600) if span / s <= 150), 86400)


def _codes(column: pd.Series) -> tuple[np.ndarray, list]:
    """``(codes, categories)`` of a column (-1 for missing), cheap for the loader's categoricals."""
    cat = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
    return cat.cat.codes.to_numpy(), [str(c) for c in cat.cat.categories]


def progress_summary(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per annotator group (and ``all``): annotators, labels, median latency, skip and both-bad rates."""
    status, status_names = _codes(pairs["status"])
    label, label_names = _codes(pairs["label"])
    group, group_names = _codes(pairs["annotator_group"])
    labelled_all = status == (status_names.index("labelled") if "labelled" in status_names else -2)
    skipped_all = status == (status_names.index("skipped") if "skipped" in status_names else -2)
    both_bad = label == (label_names.index("both_bad") if "both_bad" in label_names else -2)
    latency = pairs["latency_ms"].to_numpy(float, na_value=np.nan)
    annotator = pairs["annotator_id"].to_numpy()
    rows = []
    for i, name in [(-1, "all")] + sorted(enumerate(group_names), key=lambda x: x[1]):
        here = np.ones(len(pairs), bool) if i < 0 else group == i
        labelled = here & labelled_all
        n_labels, skipped = int(labelled.sum()), int((here & skipped_all).sum())
        rows.append({
            "annotator_group": name, "annotators": int(np.unique(annotator[here]).size), "labels": n_labels,
            "median_latency_s": float(np.nanmedian(latency[labelled])) / 1000 if n_labels else math.nan,
            "skip_rate": skipped / (n_labels + skipped) if n_labels + skipped else math.nan,
            "both_bad_rate": float(both_bad[labelled].mean()) if n_labels else math.nan,
        })
    return pd.DataFrame(rows)


def effects_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """AMCE of every randomised attribute, overall, by annotator group and by prompt type.

    Returns:
        ``[scope, cell, attribute, estimate, se, ci_low, ci_high, n_labels, n_on, n_off, method]``.
    """
    attributes = randomised(pairs)
    parts = []
    for scope, column in SCOPES.items():
        table = amce(pairs, attributes=attributes, by=[column] if column else [])
        table.insert(0, "cell", table.pop(column).astype(str) if column else "all")
        table.insert(0, "scope", scope)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def balance_table(store: Store, pairs: pd.DataFrame, sample: int = 3000, seed: int = 0) -> pd.DataFrame:
    """``acquisition.balance.arm_balance`` within annotator groups, on a seeded random sample of
    at most ``sample`` served pairs: attributes that were not randomised are read from the texts,
    which takes seconds over 100,000 pairs, and a few thousand pairs pin an SMD to about +-0.05.
    The sample's sizes are in ``n_arm`` and ``n_reference``."""
    part = pairs.sample(n=min(sample, len(pairs)), random_state=seed) if len(pairs) else pairs
    arms = [store.served_pair(int(i))["arm"] for i in part["served_pair_id"]]
    texts = {int(r): store.response(int(r))["text"]
             for r in pd.unique(part[["left_response_id", "right_response_id"]].to_numpy().ravel())}
    part = part.assign(arm=arms, left_text=part["left_response_id"].map(texts),
                       right_text=part["right_response_id"].map(texts))
    return arm_balance(part, by=("annotator_group",))


def _combination(pairs: pd.DataFrame, side: str, attributes: list[str]) -> pd.Series:
    on = [pairs[f"{side}_{a}"].fillna(False).to_numpy(bool) for a in attributes]
    return pd.Series(sum((o.astype(np.int64) << i for i, o in enumerate(on)), np.zeros(len(pairs), np.int64)),
                     index=pairs.index)


def overlap_counts(pairs: pd.DataFrame, max_rows: int = 128) -> pd.DataFrame:
    """Labelled responses (each side of a labelled randomised pair is one) per combination of the
    randomised attributes switched on x prompt type x annotator group, zeros included.

    Every combination is listed while there are at most ``max_rows`` of them; beyond that only the
    combinations some response carried (the empty ones are counted in the figure's title).

    Returns:
        ``[combination, task_type, annotator_group, labels]``.
    """
    attributes = randomised(pairs)
    labelled = labelled_pairs(pairs)
    if not attributes or labelled.empty:
        return pd.DataFrame(columns=["combination", "task_type", "annotator_group", "labels"])
    designed = labelled[labelled[[f"left_{a}" for a in attributes]].notna().any(axis=1)]
    codes = pd.concat([_combination(designed, s, attributes) for s in ("left", "right")])
    frame = pd.DataFrame({"code": codes.to_numpy(),
                          "task_type": pd.concat([designed["task_type"]] * 2).to_numpy(),
                          "annotator_group": pd.concat([designed["annotator_group"]] * 2).to_numpy()})
    counts = frame.groupby(["code", "task_type", "annotator_group"]).size()
    all_codes = range(2 ** len(attributes)) if 2 ** len(attributes) <= max_rows else sorted(frame["code"].unique())
    index = pd.MultiIndex.from_product([all_codes, sorted(pairs["task_type"].dropna().unique()),
                                        sorted(pairs["annotator_group"].dropna().unique())],
                                       names=["code", "task_type", "annotator_group"])
    out = counts.reindex(index, fill_value=0).rename("labels").reset_index()
    names = {c: "+".join(a for i, a in enumerate(attributes) if c >> i & 1) or "none" for c in all_codes}
    out.insert(0, "combination", out.pop("code").map(names))
    out.attrs["combinations"] = 2 ** len(attributes)
    return out


def _unit_value_counts(units: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(n_uc, unit, value)``: how often each value occurs in each unit, one entry per present
    (unit, value), with integer codes for both."""
    unit_code = np.unique(np.asarray(units), return_inverse=True)[1].ravel()
    value_code = np.unique(np.asarray(values), return_inverse=True)[1].ravel()
    pairs, n_uc = np.unique(np.stack([unit_code, value_code], axis=1), axis=0, return_counts=True)
    return n_uc.astype(float), pairs[:, 0], pairs[:, 1]


def krippendorff_alpha_nominal(units: np.ndarray, values: np.ndarray) -> float:
    """Krippendorff's alpha for nominal data (Krippendorff 2011, "Computing Krippendorff's
    alpha-reliability"): ``1 - (n - 1) * (n - sum_c o_cc) / (n^2 - sum_c n_c^2)``, where ``o`` is
    the coincidence matrix, ``n_c`` its margins and ``n`` the number of pairable values (those in
    units with at least two). NaN with no pairable values; 1.0 when every value is the same.

    Args:
        units: `(m,)` the unit each value belongs to; values: `(m,)` the category assigned.
    """
    if len(units) == 0:
        return math.nan
    n_uc, unit, value = _unit_value_counts(units, values)
    m_u = np.bincount(unit, weights=n_uc)  # values per unit
    pairable = m_u[unit] >= 2
    n_uc, unit, value = n_uc[pairable], unit[pairable], value[pairable]
    n = n_uc.sum()
    if n == 0:
        return math.nan
    o_cc = (n_uc * (n_uc - 1) / (m_u[unit] - 1)).sum()  # diagonal of the coincidence matrix
    n_c = np.bincount(value, weights=n_uc)
    expected = n ** 2 - (n_c ** 2).sum()
    if expected == 0:
        return 1.0  # a single category: nothing to disagree on
    return float(1 - (n - 1) * (n - o_cc) / expected)


def pairwise_agreement(units: np.ndarray, values: np.ndarray) -> float:
    """Share of agreeing pairs among all pairs of values within the same unit (NaN without pairs)."""
    if len(units) == 0:
        return math.nan
    n_uc, unit, _ = _unit_value_counts(units, values)
    m_u = np.bincount(unit, weights=n_uc)
    pairs = (m_u * (m_u - 1) / 2).sum()
    return float((n_uc * (n_uc - 1) / 2).sum() / pairs) if pairs else math.nan


def agreement_items(pairs: pd.DataFrame) -> pd.DataFrame:
    """Labels as ``(item, annotator_id, annotator_group, choice)``: an item is the unordered pair
    of response rows shown, the choice is the response row chosen (-1 tie, -2 both bad); each
    annotator's first label of an item counts."""
    labels = regular_labels(pairs)
    left, right = labels["left_response_id"].to_numpy(np.int64), labels["right_response_id"].to_numpy(np.int64)
    low, high = np.minimum(left, right), np.maximum(left, right)
    label = labels["label"].astype(str).to_numpy()
    choice = np.select([label == "left", label == "right", label == "tie"], [left, right, -1], -2)
    items = pd.DataFrame({"item": low * (int(high.max(initial=0)) + 1) + high,
                          "annotator_id": labels["annotator_id"].to_numpy(),
                          "annotator_group": labels["annotator_group"].astype(str).to_numpy(), "choice": choice})
    return items.drop_duplicates(["item", "annotator_id"])


def agreement_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per annotator group (and ``all``): items labelled by two or more annotators of that group,
    the labels on them, Krippendorff's alpha (nominal) and pairwise agreement."""
    items = agreement_items(pairs)
    rows = []
    for group, part in [("all", items)] + list(items.groupby("annotator_group")):
        shared = part[part.groupby("item")["annotator_id"].transform("size").to_numpy() >= 2]
        unit, value = shared["item"].to_numpy(), shared["choice"].to_numpy()
        rows.append({"annotator_group": group, "items": int(shared["item"].nunique()), "labels": len(shared),
                     "krippendorff_alpha": krippendorff_alpha_nominal(unit, value),
                     "pairwise_agreement": pairwise_agreement(unit, value)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- figures
def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(title=title, xaxis_visible=False, yaxis_visible=False, height=260)
    return fig


def build_progress_figure(pairs: pd.DataFrame) -> go.Figure:
    """Labels over time by group, labels per annotator, median latency over time by group, and
    each group's skip and both-bad rates."""
    status, names = _codes(pairs["status"])
    labelled = pairs[status == (names.index("labelled") if "labelled" in names else -2)]
    if labelled.empty:
        return _empty("Collection progress", "No labels yet.")
    fig = make_subplots(rows=2, cols=2, subplot_titles=(
        "Labels over time (cumulative)", "Labels per annotator",
        "Median label latency (s)", "Skip and both-bad rates"), vertical_spacing=0.16)
    ns = pd.DatetimeIndex(pd.to_datetime(labelled["labelled_at"], utc=True)).asi8  # (labels,) epoch ns
    step = _bin_seconds(ns) * 10 ** 9
    group_code, group_names = _codes(labelled["annotator_group"])
    group = np.array(group_names, dtype=object)[group_code]
    frame = pd.DataFrame({"group": group, "bin": ns // step * step,
                          "latency_s": labelled["latency_ms"].to_numpy(float, na_value=np.nan) / 1000})
    by_bin = frame.groupby(["group", "bin"])["latency_s"].agg(["size", "median"])
    per_annotator = labelled.groupby([group, labelled["annotator_id"].to_numpy()]).size()
    first = labelled.drop_duplicates("annotator_id")
    names = dict(zip(first["annotator_id"].tolist(), first["annotator"].astype(str).tolist()))
    for name in sorted(set(group)):
        binned = by_bin.loc[name]
        when = pd.to_datetime(binned.index.to_numpy(), unit="ns", utc=True)
        fig.add_trace(go.Scatter(x=when, y=binned["size"].cumsum().to_numpy(), name=name,
                                 legendgroup=name, mode="lines"), row=1, col=1)
        fig.add_trace(go.Scatter(x=when, y=binned["median"].to_numpy(), name=name, legendgroup=name,
                                 showlegend=False, mode="lines+markers", marker_size=4), row=2, col=1)
        counts = per_annotator.loc[name]
        fig.add_trace(go.Bar(x=[f"{names[i]} (#{i})" for i in counts.index], y=counts.to_numpy(), name=name,
                             legendgroup=name, showlegend=False), row=1, col=2)
    summary = progress_summary(pairs)
    summary = summary[summary["annotator_group"] != "all"]
    for column, label in (("skip_rate", "skipped"), ("both_bad_rate", "both bad")):
        fig.add_trace(go.Bar(x=summary["annotator_group"], y=summary[column], name=label,
                             text=[f"{v:.1%}" for v in summary[column]]), row=2, col=2)
    fig.update_yaxes(tickformat=".0%", row=2, col=2)
    fig.update_xaxes(showticklabels=len(names) <= 30, row=1, col=2)
    fig.update_layout(height=620, barmode="group", title="Collection progress")
    return fig


def build_effects_figure(table: pd.DataFrame) -> go.Figure:
    """AMCE with 95% CI per attribute, one panel per scope (overall / annotator group / prompt
    type), one marker per cell; the number of labels behind each estimate is in the legend (a
    range where attributes differ), on the marker where a panel has at most three cells, and in
    the hover."""
    table = table.dropna(subset=["estimate"])
    if table.empty:
        return _empty("Attribute effects (AMCE)", "No randomised attribute has labels on both levels yet.")
    scopes = [s for s in SCOPES if s in set(table["scope"])]
    attributes = sorted(table["attribute"].unique())
    position = {a: i for i, a in enumerate(attributes)}
    fig = make_subplots(rows=1, cols=len(scopes), shared_yaxes=True, subplot_titles=scopes,
                        horizontal_spacing=0.04)
    for col, scope in enumerate(scopes, start=1):
        part = table[table["scope"] == scope]
        cells = sorted(part["cell"].unique())
        for j, cell in enumerate(cells):
            rows = part[part["cell"] == cell]
            offset = (j - (len(cells) - 1) / 2) * min(0.8 / len(cells), 0.25)
            low, high = int(rows["n_labels"].min()), int(rows["n_labels"].max())
            fig.add_trace(go.Scatter(
                x=rows["estimate"], y=rows["attribute"].map(position) + offset,
                mode="markers+text" if len(cells) <= 3 else "markers",
                name=f"{scope}: {cell} (n={low:,})" if low == high else f"{scope}: {cell} (n={low:,}-{high:,})",
                legendgroup=scope,
                error_x={"type": "data", "symmetric": False, "array": rows["ci_high"] - rows["estimate"],
                         "arrayminus": rows["estimate"] - rows["ci_low"]},
                text=[f"n={n:,}" for n in rows["n_labels"]], textposition="top center", textfont_size=9,
                customdata=np.stack([rows["attribute"], rows["ci_low"], rows["ci_high"], rows["n_labels"],
                                     rows["method"]], axis=1),
                hovertemplate=(f"{cell}<br>%{{customdata[0]}}: %{{x:.3f}} [%{{customdata[1]:.3f}}, "
                               "%{customdata[2]:.3f}]<br>n labels %{customdata[3]:,} (%{customdata[4]})"
                               "<extra></extra>"),
            ), row=1, col=col)
        fig.add_vline(x=0, line_dash="dot", line_color="grey", row=1, col=col)
        fig.update_xaxes(title_text="AMCE on P(chosen)", row=1, col=col)
    fig.update_yaxes(tickvals=list(position.values()), ticktext=attributes, autorange="reversed")
    fig.update_layout(title="Attribute effects (AMCE, 95% CI) from the randomised arms",
                      height=max(360, 70 * len(attributes) + 160))
    return fig


def build_balance_figure(table: pd.DataFrame) -> go.Figure:
    """SMD of each covariate between each arm and the reference arm, per stratum (|SMD| < 0.1 balanced)."""
    table = table.dropna(subset=["smd"]) if len(table) else table
    if table.empty:
        return _empty("Balance between arms", "Only one kind of arm has served pairs: nothing to compare.")
    table = table.assign(row=table["stratum"] + " · " + table["arm"] + " vs " + table["reference"])
    grid = table.pivot_table(index="row", columns="covariate", values="smd", aggfunc="first")
    z = grid.to_numpy(float).clip(-1, 1)
    fig = go.Figure(go.Heatmap(
        z=z, x=list(grid.columns), y=list(grid.index), zmin=-1, zmax=1, colorscale="RdBu_r", zmid=0,
        text=[[("" if math.isnan(v) else f"{v:.2f}") for v in row] for row in grid.to_numpy(float)],
        texttemplate="%{text}", colorbar_title="SMD"))
    fig.update_layout(title="Balance between arms within groups (standardised mean difference; |SMD| < 0.1 balanced)",
                      height=max(300, 28 * len(grid) + 160), yaxis_autorange="reversed")
    return fig


def build_overlap_figure(counts: pd.DataFrame) -> go.Figure:
    """Heatmap of labelled responses per attribute combination (rows) x prompt type · group
    (columns); empty cells are drawn in red and counted in the title."""
    if counts.empty:
        return _empty("Overlap", "No labelled pair with randomised attributes yet.")
    column = counts["task_type"] + " · " + counts["annotator_group"]
    grid = counts.assign(column=column).pivot_table(index="combination", columns="column", values="labels",
                                                    aggfunc="sum", sort=False)
    z = grid.to_numpy(float)
    empty = int((z == 0).sum())
    top = max(float(z.max()), 1.0)
    fig = go.Figure(go.Heatmap(
        z=z, x=list(grid.columns), y=list(grid.index), zmin=0, zmax=top, text=z.astype(int),
        texttemplate="%{text}" if z.size <= 2500 else None, colorbar_title="labels",
        colorscale=[[0, EMPTY_COLOUR], [0.5 / top, EMPTY_COLOUR], [0.5 / top, "#f7fbff"], [1, "#08306b"]],
        hovertemplate="%{y}<br>%{x}<br>%{z} labelled responses<extra></extra>"))
    missing = counts.attrs.get("combinations", len(grid)) - len(grid)
    note = f"; {missing} combinations never shown are not listed" if missing > 0 else ""
    fig.update_layout(title=f"Overlap: labelled responses per attribute combination x prompt type · group "
                            f"({empty} of {z.size} cells empty, in red{note})",
                      height=max(360, 16 * len(grid) + 200), yaxis_autorange="reversed")
    return fig


def build_model_figure(checkpoints: pd.DataFrame) -> go.Figure:
    """Per checkpoint version: held-out and OOD (flipped-attribute) accuracy, reward sensitivity
    per attribute (reward SDs) and Pearson(reward, length)."""
    if checkpoints.empty or "heldout_accuracy" not in checkpoints:
        return _empty("Reward model", "No checkpoint published yet.")
    x = "v" + checkpoints["version"].astype(str)
    labels = checkpoints["labels"] if "labels" in checkpoints else pd.Series(np.nan, index=checkpoints.index)
    fig = make_subplots(rows=1, cols=3, subplot_titles=("Accuracy", "Reward sensitivity (reward SDs)",
                                                         "Pearson(reward, length)"))
    for column, name in (("heldout_accuracy", "held-out"), ("ood_accuracy", "OOD: flipped attributes")):
        if column in checkpoints:
            fig.add_trace(go.Scatter(x=x, y=checkpoints[column], name=name, mode="lines+markers",
                                     customdata=labels, hovertemplate="%{x} (%{customdata} labels): %{y:.3f}"),
                          row=1, col=1)
    for column in sorted(c for c in checkpoints.columns if c.startswith("sensitivity_")):
        fig.add_trace(go.Scatter(x=x, y=checkpoints[column], name=column.removeprefix("sensitivity_"),
                                 mode="lines+markers", legendgroup="sensitivity"), row=1, col=2)
    if "pearson_reward_length" in checkpoints:
        fig.add_trace(go.Scatter(x=x, y=checkpoints["pearson_reward_length"], name="Pearson(reward, length)",
                                 mode="lines+markers"), row=1, col=3)
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey", row=1, col=1)
    fig.add_hline(y=0, line_dash="dot", line_color="grey", row=1, col=2)
    fig.add_hline(y=0, line_dash="dot", line_color="grey", row=1, col=3)
    fig.update_layout(title="Reward model per checkpoint", height=420)
    return fig


def build_agreement_figure(table: pd.DataFrame) -> go.Figure:
    """Krippendorff's alpha and pairwise agreement per group, with the items behind each."""
    table = table[table["items"] > 0] if len(table) else table
    if table.empty:
        return _empty("Agreement", "No item has been labelled by two annotators of the same group yet.")
    fig = go.Figure()
    for column, name in (("krippendorff_alpha", "Krippendorff's alpha (nominal)"),
                         ("pairwise_agreement", "pairwise agreement")):
        fig.add_trace(go.Bar(x=table["annotator_group"], y=table[column], name=name,
                             text=[f"{v:.2f}<br>{n:,} items" for v, n in zip(table[column], table["items"])]))
    fig.update_layout(title="Agreement on items labelled by several annotators", barmode="group",
                      yaxis_range=[min(0.0, float(table["krippendorff_alpha"].min()) - 0.05), 1.05], height=380)
    return fig
