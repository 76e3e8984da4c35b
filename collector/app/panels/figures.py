"""Pure ``build_*_figure(df) -> plotly Figure`` functions, one per dashboard panel."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from collector.app.panels.loading import EMPTY_COLOUR, SCOPES
from collector.app.panels.summaries import _bin_seconds, _codes, progress_summary


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(title=title, xaxis_visible=False, yaxis_visible=False, height=260)
    return fig


def build_progress_figure(pairs: pd.DataFrame) -> go.Figure:
    """Labels over time by group, labels per annotator, median latency over time by group, and
    each group's skip and both-bad rates."""
    status, statuses = _codes(pairs["status"])
    labelled = pairs[status == (statuses.index("labelled") if "labelled" in statuses else -2)]
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
    """Krippendorff's alpha (with its bootstrap 95% CI over items) and pairwise agreement per
    group, with the items and labels behind each."""
    table = table[table["items"] > 0] if len(table) else table
    if table.empty:
        return _empty("Agreement", "No item has been labelled by two annotators of the same group yet.")
    fig = go.Figure()
    fig.add_trace(go.Bar(x=table["annotator_group"], y=table["krippendorff_alpha"], name="Krippendorff's alpha (nominal)",
                         error_y={"type": "data", "symmetric": False,
                                  "array": (table["alpha_ci_high"] - table["krippendorff_alpha"]).fillna(0),
                                  "arrayminus": (table["krippendorff_alpha"] - table["alpha_ci_low"]).fillna(0)},
                         text=[f"{v:.2f}<br>{n:,} items, {m:,} labels" for v, n, m in
                               zip(table["krippendorff_alpha"], table["items"], table["labels"])]))
    fig.add_trace(go.Bar(x=table["annotator_group"], y=table["pairwise_agreement"], name="pairwise agreement",
                         text=[f"{v:.2f}" for v in table["pairwise_agreement"]]))
    fig.update_layout(title="Agreement on items labelled by several annotators", barmode="group",
                      yaxis_range=[min(0.0, float(table["krippendorff_alpha"].min()) - 0.05), 1.05], height=380)
    return fig
