"""Turning benchmark results into a printed table, a JSON file and a Plotly figure."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def mean_ci95(values) -> tuple[float, float | None, float | None]:
    """Mean and 95% t interval over seeds (t with n - 1 degrees of freedom: 12.7 for 2 seeds,
    2.26 for 10, not 1.96); no interval from one value."""
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if not len(v):
        return float("nan"), None, None
    if len(v) == 1:
        return float(v[0]), None, None
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def _mean_ci(values) -> str:
    mean, low, high = mean_ci95(values)
    if math.isnan(mean):
        return "n/a"
    if low is None or high is None:
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {(high - low) / 2:.3f}"


def _paired(g: pd.DataFrame, reference: pd.DataFrame, column: str) -> str:
    """The difference to ``reference`` paired by seed (same split and placements), t interval."""
    ref = reference.set_index("seed")[column]
    diffs = [value - ref[seed] for seed, value in zip(g.seed, g[column]) if seed in ref.index]
    return _mean_ci(diffs) if diffs else "n/a"


def policy_table(results: dict[str, Any]) -> pd.DataFrame:
    """One row per (policy, model): mean ± 95% half-width over seeds."""
    main = pd.DataFrame(results["main"])
    for column in ("mirrored_ood_accuracy", "held_out_mirrored_accuracy", "unrandomised_mirrored_accuracy"):
        if column not in main.columns:
            main[column] = np.nan
    rows = []
    for (policy, model), g in main.groupby(["policy", "model"], sort=False):
        same_model = main[main.model == model]
        observational, oracle = same_model[same_model.policy == "observational"], same_model[same_model.policy == "oracle"]
        row = {"policy": policy, "model": model, "seeds": len(g), "labels": int(g["labels"].iloc[0]),
               "clean": _mean_ci(g.clean_accuracy), "mirrored OOD": _mean_ci(g.mirrored_ood_accuracy),
               "held-out padding": _mean_ci(g.held_out_mirrored_accuracy),
               "unrandomised": _mean_ci(g.unrandomised_mirrored_accuracy),
               "ID": _mean_ci(g.id_accuracy), "flipped OOD": _mean_ci(g.ood_accuracy),
               "clean - observational": _paired(g, observational, "clean_accuracy") if policy != "observational" else "",
               "clean - oracle": _paired(g, oracle, "clean_accuracy") if policy != "oracle" else "",
               "mirrored - oracle": _paired(g, oracle, "mirrored_ood_accuracy") if policy != "oracle" else ""}
        for col in [c for c in g.columns if c.startswith("sensitivity_")]:
            row[col.replace("sensitivity_", "sens. ")] = f"{g[col].mean():+.2f}"
        rows.append(row)
    return pd.DataFrame(rows)


def _t_factor(n: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1)) if n > 1 else float("inf")


def precondition(results: dict[str, Any], policy: str = "randomised_attributes", gain: float = 0.05) -> str:
    """Is the task learnable here? ``policy``'s clean accuracy (mean over seeds) must rise at
    least ``gain`` from the first to the last curve point; printed as met or not met."""
    curves = pd.DataFrame(results.get("curves", []))
    if curves.empty or "clean_accuracy" not in curves.columns:
        return ""
    g = curves[curves.policy == policy].groupby("labels").clean_accuracy.mean()
    if len(g) < 2:
        return ""
    first, last = g.iloc[0], g.iloc[-1]
    verdict = "met" if last - first >= gain else "NOT met: models here are close to chance, read differences with care"
    return (f"Precondition (the task is learnable): {policy} clean accuracy {first:.3f} at {g.index[0]} labels -> "
            f"{last:.3f} at {g.index[-1]} labels ({100 * (last - first):+.1f} points; at least "
            f"{100 * gain:.0f} required): {verdict}.")


MIN_AMCE_LABELS = 30  # below this a pair-clustered SE is not a standard error (HH: lists apply to ~2 pairs)


def amce_summary(results: dict[str, Any]) -> pd.DataFrame:
    """Coverage per arm, over (attribute, seed) estimates from at least ``MIN_AMCE_LABELS``
    labelled pairs where the attribute applied to both sides; ``left out`` counts the rest."""
    if not results["amce"]:
        return pd.DataFrame()
    df = pd.DataFrame(results["amce"]).dropna(subset=["estimate"])
    small = df[df.n_labels < MIN_AMCE_LABELS].groupby("arm", sort=False).size()
    df = df[df.n_labels >= MIN_AMCE_LABELS]
    df = pd.concat([df, df.assign(arm="all randomising arms")], ignore_index=True)
    return (df.groupby("arm", sort=False)
              .agg(cases=("covered", "size"), covered=("covered", "sum"), coverage=("covered", "mean"),
                   mean_abs_error=("estimate", lambda s: float((s - df.loc[s.index, "true_amce"]).abs().mean())),
                   mean_ci_width=("ci_high", lambda s: float((s - df.loc[s.index, "ci_low"]).mean())))
              .reset_index()
              .assign(**{f"left out (< {MIN_AMCE_LABELS} labels)": lambda t: [
                  int(small.sum()) if a == "all randomising arms" else int(small.get(a, 0)) for a in t.arm]}))


def _wilson(k: int, n: int) -> str:
    if not n:
        return "n/a"
    z, p = 1.96, k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return f"[{max(0.0, centre - half):.2f}, {min(1.0, centre + half):.2f}]"


def amce_check_summary(results: dict[str, Any]) -> pd.DataFrame:
    rows = pd.DataFrame(results.get("amce_check", []))
    if rows.empty:
        return rows
    out = []
    for kind, g in rows.groupby("kind", sort=False):
        k, n = int(g.covered.sum()), len(g)
        out.append({"estimator": kind, "cases": n, "covered": k, "coverage": round(k / n, 3),
                    "coverage 95% CI": _wilson(k, n), "SD of z": round(float(g.z.std(ddof=1)), 2) if n > 1 else "n/a",
                    "mean z": round(float(g.z.mean()), 2), "mean |error|": round(float((g.estimate - g.population_amce)
                                                                                        .abs().mean()), 3)})
    return pd.DataFrame(out)


def objective_summary(results: dict[str, Any]) -> pd.DataFrame:
    """Per (objective, attribute): nominal effect, mean estimate and truth, coverage over seeds."""
    rows = pd.DataFrame(results.get("objective_amce", []))
    if rows.empty:
        return rows
    out = []
    for (objective, attribute), g in rows.groupby(["objective", "attribute"], sort=False):
        out.append({"objective": objective, "attribute": attribute, "nominal": g.nominal_effect.iloc[0],
                    "estimate": round(g.estimate.mean(), 3), "truth": round(g.true_amce.mean(), 3),
                    "covered": f"{int(g.covered.sum())} of {len(g)}"})
    k, n = int(rows.covered.sum()), len(rows)
    out.append({"objective": "all", "attribute": "", "nominal": "", "estimate": "", "truth": "",
                "covered": f"{k} of {n} {_wilson(k, n)}"})
    return pd.DataFrame(out)


def active_protocol_table(results: dict[str, Any], part: str = "") -> pd.DataFrame:
    """Per strategy: accuracy at a few budgets, the paired difference to random at the
    reference budget, and the median label ratio with its bootstrap CI (``part =
    "noise_control"``: the same for the pure-noise pool)."""
    protocol = results.get("active_protocol")
    if protocol and part:
        protocol = protocol.get(part)
    if not protocol:
        return pd.DataFrame()
    cfg = results["world"]["active_protocol"]
    budgets, reference = cfg["budgets"], cfg["reference_budget"]
    shown = sorted({budgets[0], budgets[len(budgets) // 2], reference, budgets[-1]})
    runs = pd.DataFrame(protocol["runs"])
    random = {r.seed: r.curve for r in runs[runs.strategy == "random"].itertuples()}
    rows = []
    for s in protocol["summary"]:
        g = runs[runs.strategy == s["strategy"]]
        row: dict[str, Any] = {"strategy": s["strategy"]}
        for b in shown:
            row[f"acc@{b}"] = _mean_ci([c[b] for c in g.curve])
        if s["strategy"] != "random":
            row[f"- random @{reference} (paired)"] = _mean_ci([c[reference] - random[seed][reference]
                                                               for seed, c in zip(g.seed, g.curve)])
        low, high = s["ratio_ci95"]
        row["label ratio, median [95% bootstrap CI]"] = f"{s['ratio_median']:.2f} [{low:.2f}, {high:.2f}]"
        row["never reached"] = f"{s['never_reached']} of {s['seeds']}"
        row["distinct prompts"] = f"{s['distinct_prompts']:.0f}"
        if "served_twice" in g.columns:  # the serving path: what the logged draws say
            row["base pairs served twice"] = int(g.served_twice.sum())
            row["floor kept"] = "yes" if bool(g.floor_kept.all()) else "NO"
        row["mean |quality gap|"] = f"{s['mean_abs_gap']:.2f}"
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def sweep_tables(results: dict[str, Any]) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    sweeps = pd.DataFrame(results.get("sweeps", []))
    if sweeps.empty:
        return out
    latent = sweeps[sweeps.sweep == "rho_latent"]
    if not latent.empty:
        figures = [("decorrelated", "decorrelated_accuracy"), ("mirrored", "mirrored_accuracy"), ("ID", "id_accuracy"),
                   ("flipped OOD", "ood_accuracy")]
        figures = [(label, col) for label, col in figures if col in latent.columns]
        out["rho_latent"] = pd.DataFrame([
            {"policy": policy, "rho": rho, **{label: _mean_ci(g[col]) for label, col in figures}}
            for (policy, rho), g in latent.groupby(["policy", "rho"], sort=False)])
        if "decorrelated_accuracy" in latent.columns:
            obs, rnd = latent[latent.policy == "observational"], latent[latent.policy == "randomised_attributes"]
            out["rho_latent_paired"] = pd.DataFrame([
                {"rho": rho, **{f"{label}: randomised - observational (paired)":
                                _paired(rnd[rnd.rho == rho], g, col) for label, col in figures}}
                for rho, g in obs.groupby("rho", sort=False)])
    assign = sweeps[sweeps.sweep == "rho_assignment"].copy()
    if not assign.empty:
        assign["rho"] = assign["rho"].map(lambda r: "random" if r is None or (isinstance(r, float) and math.isnan(r)) else r)
        out["rho_assignment"] = (assign.groupby(["policy", "rho", "model"], sort=False)
                                 .agg(consistent=("consistent_accuracy", "mean"), inconsistent=("inconsistent_accuracy", "mean"))
                                 .round(3).reset_index())
        cells = [c for c in assign.columns if c.startswith("cell ")]
        if cells and assign.seed.nunique() > 1:
            rows = []
            for (policy, rho, model), g in assign.groupby(["policy", "rho", "model"], sort=False):
                rows.append({"policy": policy, "rho": rho, "model": model, "consistent": _mean_ci(g.consistent_accuracy),
                             "inconsistent": _mean_ci(g.inconsistent_accuracy),
                             **{c.removeprefix("cell "): f"{g[c].mean():.3f}" for c in cells}})
            out["rho_assignment_cells"] = pd.DataFrame(rows)
            random = assign[assign.policy == "assignment_randomisation"]
            paired = []
            for (rho, model), g in assign[assign.policy == "observational"].groupby(["rho", "model"], sort=False):
                ref = random[random.model == model]
                paired.append({"model": model, "rho": rho, "inconsistent - randomised (paired)":
                               _paired(g, ref, "inconsistent_accuracy"),
                               "consistent - randomised (paired)": _paired(g, ref, "consistent_accuracy")})
            out["rho_assignment_paired"] = pd.DataFrame(paired)
        conditioning = conditioning_rows(assign)
        if conditioning:
            out["conditioning (each model - bt_mlp, paired by seed)"] = pd.DataFrame(conditioning)
    return out


def _model_gain(g: pd.DataFrame, model: str, column: str, reference: str = "bt_mlp") -> list[float]:
    return _paired_diffs(g, "model", model, reference, column)


def _paired_diffs(frame: pd.DataFrame, key: str, value: str, reference: str, column: str) -> list[float]:
    """``column`` of the rows where ``key == value`` minus the same seed's ``key == reference``."""
    a = frame[frame[key] == value].set_index("seed")[column]
    b = frame[frame[key] == reference].set_index("seed")[column]
    return [float(a[s] - b[s]) for s in a.index if s in b.index]


def conditioning_rows(assign: pd.DataFrame) -> list[dict[str, Any]]:
    """Under randomised assignment (and its groups-agree control), each model that sees c minus
    ``bt_mlp``, paired by seed: does conditioning learn the group-specific effect?"""
    rows: list[dict[str, Any]] = []
    if "bt_mlp" not in set(assign.model):
        return rows
    for policy in ("assignment_randomisation", "assignment_randomisation [groups agree: control]"):
        g = assign[assign.policy == policy]
        for model in [m for m in dict.fromkeys(g.model) if m != "bt_mlp"]:
            if g.seed.nunique() < 2:
                continue
            rows.append({"assignment": policy, "model": model,
                         **{f"{kind} - bt_mlp": _mean_ci(_model_gain(g, model, f"{kind}_accuracy"))
                            for kind in ("consistent", "inconsistent")}})
    return rows


def text_report(results: dict[str, Any]) -> str:
    w = results["world"]
    lines = []
    if w.get("smoke"):
        lines += ["SMOKE TEST (--quick): a small configuration that checks the benchmark runs end to end. "
                  f"{w['seeds']} seeds give t intervals {_t_factor(w['seeds']):.1f} standard errors wide; do not "
                  "read or cite these numbers as results.", ""]
    lines += [f"Causal benchmark, world {w['name']!r}: {w['labels']} labels per arm, {w['seeds']} seeds "
              f"(each with its own train/test split and placements), spurious "
              f"{', '.join(w['confounding']['spurious']) or 'none'} at rho_spurious = {w['confounding']['rho_spurious']}",
              "", "Accuracy against the truly better response (mean ± 95% t half-width over seeds; differences "
              "paired by seed). clean: no attribute written on either side; mirrored OOD: every test item with "
              "the spurious attribute on the better side and again on the worse side (a spurious detector "
              "scores 0.5); held-out padding: the mirrored sets padded with sentences no editor writes (does the "
              "model ignore length, or only the editor's filler?); unrandomised: mirrored on an attribute no arm "
              "randomised (NaN without one); ID: the training correlation; flipped OOD: the "
              "correlation reversed (the worst case: a spurious detector scores 1 - rho_spurious):",
              policy_table(results).to_string(index=False) if results["main"] else "(no policies compared)", ""]
    checks = headline_checks(results)
    if not checks.empty:
        lines += ["Headlines beside their negative controls (paired by seed, 95% t intervals; label ratios: median "
                  "over seeds with a bootstrap CI). A headline whose control fails is printed as FAILED:",
                  checks.to_string(index=False), ""]
    check = precondition(results)
    if check:
        lines += [check, ""]
    amce = amce_summary(results)
    if not amce.empty:
        lines += ["AMCE 95% CI coverage of the true AMCE (randomised attributes x seeds):",
                  amce.to_string(index=False, float_format="%.3f"), ""]
    if results.get("labels_to_target"):
        lines.append("Labels to reach randomised_attributes' final OOD accuracy (mean curves over seeds):")
        for r in results["labels_to_target"]:
            got = "not reached" if r["labels"] is None else f"{r['labels']} labels ({100 * r['share']:.0f}%)"
            lines.append(f"  {r['policy']}: target {r['target']} at {r.get('reference_labels')} labels -> {got}")
        lines.append("")
    check = amce_check_summary(results)
    if not check.empty:
        lines += ["AMCE check against the population AMCE (Monte Carlo over redraws of the design, computed apart "
                  "from the labels); non-zero, group-specific true effects; coverage with its 95% Wilson interval; "
                  "the naive observational estimate of the spurious attribute is a negative control that should fail:",
                  check.to_string(index=False), ""]
    objective = objective_summary(results)
    if not objective.empty:
        lines += ["The objective as an intervention (objective randomised per "
                  f"{w['objective']['randomise']}; AMCE within each shown objective vs the truth on the realised "
                  "design; coverage with its 95% Wilson interval):", objective.to_string(index=False), ""]
    for name, table in sweep_tables(results).items():
        lines += [f"Sweep {name}:", table.to_string(index=False), ""]
    protocol = active_protocol_table(results)
    if not protocol.empty:
        cfg = w["active_protocol"]
        lines += [f"Active acquisition protocol ({results['active_protocol'].get('path', 'harness')}): "
                  f"{cfg['seeds']} paired seeds, a pool of "
                  f"{results['active_protocol']['pool_pairs']} candidate pairs ({cfg['pool_factor']}x the largest "
                  f"budget), refresh every {cfg['refresh_every']} labels, uniform floor {cfg['floor']}; "
                  f"{results['active_protocol']['test_pairs']} test pairs. Label ratio: labels a strategy needs to "
                  f"reach random's accuracy at {cfg['reference_budget']} labels, over {cfg['reference_budget']} "
                  "(random's own ratio is at most 1 by construction; target: <= 0.5 with the CI below 0.7):",
                  protocol.to_string(index=False), ""]
        noise = active_protocol_table(results, "noise_control")
        if not noise.empty:
            lines += ["Negative control: the same protocol on a pool of pure label noise (every label a coin flip); "
                      "the label ratio's CI must cover 1:", noise.to_string(index=False), ""]
    return "\n".join(lines)


def build_benchmark_figure(results: dict[str, Any]) -> go.Figure:
    """ID / OOD / oracle bars, labels-to-target curves, AMCE vs truth, and the sweeps."""
    main = pd.DataFrame(results["main"])
    model = results["world"]["models"][0]
    main = main[main.model == model]
    curves = pd.DataFrame(results["curves"])
    amce = pd.DataFrame(results["amce"])
    sweeps = sweep_tables(results)
    rows = 2 if sweeps else 1
    fig = make_subplots(rows=rows, cols=3, subplot_titles=(
        f"Accuracy by policy ({model})", "OOD accuracy vs labels", "AMCE estimate vs truth (95% CI)",
        "rho_latent sweep: decorrelated accuracy", "rho_assignment sweep: inconsistent pairs",
        "rho_assignment sweep: consistent pairs")[: 3 * rows])
    order = list(dict.fromkeys(main.policy))
    for i, (col, name) in enumerate((("id_accuracy", "ID"), ("ood_accuracy", "OOD"))):
        g = main.groupby("policy", sort=False)[col].mean().reindex(order)
        fig.add_trace(go.Bar(x=order, y=g.values, name=name, marker_color=["#4c78a8", "#e45756"][i]), row=1, col=1)
    oracle = main[main.policy == "oracle"].ood_accuracy.mean()
    fig.add_hline(y=oracle, line_dash="dot", annotation_text="oracle OOD", row=1, col=1)
    palette = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2"]
    for k, (policy, g) in enumerate(curves.groupby("policy", sort=False) if not curves.empty else []):
        m = g.groupby("labels").ood_accuracy.mean()
        fig.add_trace(go.Scatter(x=m.index, y=m.values, mode="lines+markers", name=f"{policy} (OOD)",
                                 line_color=palette[k % len(palette)]), row=1, col=2)
    if not amce.empty:
        a = amce.dropna(subset=["estimate"])
        a = a[a.seed == a.seed.min()]
        labels = a.arm.str.replace("_", " ").str.slice(0, 14) + ": " + a.attribute
        fig.add_trace(go.Scatter(x=labels, y=a.estimate, mode="markers", name="AMCE estimate",
                                 error_y={"type": "data", "symmetric": False, "array": a.ci_high - a.estimate,
                                          "arrayminus": a.estimate - a.ci_low}), row=1, col=3)
        fig.add_trace(go.Scatter(x=labels, y=a.true_amce, mode="markers", name="true AMCE",
                                 marker={"symbol": "x", "color": "black"}), row=1, col=3)
    if "rho_latent" in sweeps:
        raw = pd.DataFrame(results["sweeps"])
        raw = raw[raw.sweep == "rho_latent"]
        figure = "decorrelated_accuracy" if "decorrelated_accuracy" in raw.columns else "ood_accuracy"
        for policy, g in raw.groupby("policy", sort=False):
            m = g.groupby("rho")[figure].mean()
            fig.add_trace(go.Scatter(x=m.index, y=m.values, mode="lines+markers", name=f"{policy} (rho_latent)"),
                          row=2, col=1)
    if "rho_assignment" in sweeps:
        t = sweeps["rho_assignment"]
        obs = t[t.policy == "observational"]
        for k, (model_name, g) in enumerate(obs.groupby("model", sort=False)):
            for column, kind in ((2, "inconsistent"), (3, "consistent")):
                fig.add_trace(go.Scatter(x=g.rho.astype(float), y=g[kind], mode="lines+markers",
                                         name=f"{model_name} (rho_assignment)",
                                         line_color=palette[k % len(palette)], showlegend=column == 2),
                              row=2, col=column)
    fig.update_layout(height=420 * rows, width=1500, barmode="group", template="plotly_white",
                      title=f"Deconfound causal benchmark: {results['world']['name']}")
    return fig


def write_outputs(results: dict[str, Any], out: Path, stem: str = "benchmark") -> dict[str, str]:
    """``<stem>.json``, ``<stem>.html`` and ``<stem>.png`` under ``out``; the PNG goes through
    kaleido driving the local Chromium (offline). Returns what was written, or why not."""
    out.mkdir(parents=True, exist_ok=True)
    written = {"json": str(out / f"{stem}.json")}
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1, default=_plain))
    if not results["main"]:
        written["figure"] = "no figure: no policies were compared (the tables above are the result)"
        return written
    fig = build_benchmark_figure(results)
    fig.write_html(out / f"{stem}.html", include_plotlyjs="cdn")
    written["html"] = str(out / f"{stem}.html")
    if "BROWSER_PATH" not in os.environ and Path("/usr/bin/chromium").exists():
        os.environ["BROWSER_PATH"] = "/usr/bin/chromium"
    try:
        fig.write_image(out / f"{stem}.png", width=1500, height=fig.layout.height)
        written["png"] = str(out / f"{stem}.png")
    except Exception as exc:  # kaleido missing or no Chromium: say so, keep the rest
        written["png_error"] = f"PNG not written ({type(exc).__name__}: {exc}); install kaleido and Chromium"
    return written


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


HEADLINE_FIGURE = "mirrored_ood_accuracy"


def _fmt(mean: float, low: float | None, high: float | None, digits: int = 3, sign: str = "+") -> str:
    """A difference with its CI (``sign="+"``), or a ratio (``sign=""``)."""
    if math.isnan(mean):
        return "n/a"
    if low is None or high is None:
        return f"{mean:{sign}.{digits}f}"
    return f"{mean:{sign}.{digits}f} [{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]"


def headline_checks(results: dict[str, Any]) -> pd.DataFrame:
    """Each headline beside its negative control, in one table.

    - Interventional arm vs observational on the natural pool (mirrored OOD accuracy, paired by
      seed) beside the same difference on the unconfounded pool (rho = 0.5), whose CI must
      cover 0: a gain there is not deconfounding.
    - Table 1 at its largest rho beside rho = 0 (no correlation), whose CI must cover 0.
    - The active protocol's label ratio beside the ratio on a pool of pure label noise, whose
      CI must cover 1.
    A headline whose control fails is printed as FAILED, whatever its own interval says."""
    rows: list[dict[str, Any]] = []
    main = pd.DataFrame(results.get("main", []))
    world = results["world"]
    if not main.empty:
        main = main[main.model == world["models"][0]]
        # mirrored sets written the way the confound was planted: editor padding, or padding it cannot read
        held_out = world["confounding"].get("planted") == "held_out"
        figure, figure_name = (("held_out_mirrored_accuracy", "held-out padding mirrored") if held_out
                               else (HEADLINE_FIGURE, "mirrored OOD"))
        for label in [p for p in dict.fromkeys(main.policy) if p not in ("observational", "oracle") and "[" not in p]:
            mean, low, high = mean_ci95(_paired_diffs(main, "policy", label, "observational", figure))
            control_label = f"{label} [rho=0.5 control]"
            c_mean, c_low, c_high = mean_ci95(_paired_diffs(main, "policy", control_label, "oracle", figure))
            rows.append(_verdict(f"{label} - observational, {figure_name} (natural pool)", (mean, low, high),
                                 "same arm - observational at rho = 0.5 (covers 0)", (c_mean, c_low, c_high), 0.0))
            clean = main[main.policy == f"{label} [clean pool: upper bound]"]
            if not clean.empty:
                u = mean_ci95(_paired_diffs(main, "policy", clean.policy.iloc[0], "observational", figure))
                rows.append({"headline": f"  upper bound: {label} on a clean pool - observational, {figure_name}",
                             "estimate [95% CI]": _fmt(*u), "negative control": "(not a result: no confound in its texts)",
                             "control [95% CI]": "", "control": "", "headline status": "upper bound only"})
    sweeps = pd.DataFrame(results.get("sweeps", []))
    if not sweeps.empty and (sweeps.sweep == "rho_latent").any():
        latent = sweeps[sweeps.sweep == "rho_latent"]
        top, bottom = latent.rho.max(), latent.rho.min()

        def at(rho: float) -> tuple[float, float | None, float | None]:
            return mean_ci95(_paired_diffs(latent[latent.rho == rho], "policy", "randomised_attributes",
                                           "observational", "decorrelated_accuracy"))

        rows.append(_verdict(f"Table 1: randomised - observational at rho_latent = {top}, decorrelated", at(top),
                             f"the same at rho_latent = {bottom} (covers 0)", at(bottom) if bottom == 0 else
                             (float("nan"), None, None), 0.0))
    if not sweeps.empty and (sweeps.sweep == "rho_assignment").any():
        assign = sweeps[sweeps.sweep == "rho_assignment"]
        main_arm = assign[assign.policy == "assignment_randomisation"]
        control_arm = assign[assign.policy == "assignment_randomisation [groups agree: control]"]
        if "bt_mlp" in set(main_arm.model):
            for model in [m for m in dict.fromkeys(main_arm.model) if m != "bt_mlp"]:
                def mean_gain(g: pd.DataFrame) -> list[float]:
                    c, i = _model_gain(g, model, "consistent_accuracy"), _model_gain(g, model, "inconsistent_accuracy")
                    return [(x + y) / 2 for x, y in zip(c, i)]
                rows.append(_verdict(f"conditioning: {model} - bt_mlp under randomised assignment (all cells)",
                                     mean_ci95(mean_gain(main_arm)), "the same where the groups agree (covers 0)",
                                     mean_ci95(mean_gain(control_arm)) if not control_arm.empty
                                     else (float("nan"), None, None), 0.0))
    protocol = results.get("active_protocol") or {}
    served = [s for s in protocol.get("summary", []) if s["strategy"] != "random"]
    noise = {s["strategy"]: s for s in (protocol.get("noise_control") or {}).get("summary", [])}
    for s in served:
        c = noise.get(s["strategy"])
        rows.append(_verdict(f"active protocol ({protocol.get('path', 'harness')}): {s['strategy']} label ratio",
                             (s["ratio_median"], *s["ratio_ci95"]), "the ratio on pure label noise (covers 1)",
                             (c["ratio_median"], *c["ratio_ci95"]) if c else (float("nan"), None, None), 1.0,
                             digits=2, direction=-1))
    return pd.DataFrame(rows)


def _verdict(headline: str, value: tuple, control: str, control_value: tuple, null: float,
             digits: int = 3, direction: int = 1) -> dict[str, Any]:
    """``direction``: the side of ``null`` the headline claims (+1: a gain; -1: a label ratio
    below 1). A control must cover ``null`` (two-sided, as specified); the headline holds only
    when its CI lies wholly on the claimed side."""
    mean, low, high = value
    c_mean, c_low, c_high = control_value
    if c_low is None or c_high is None or math.isnan(c_mean):
        control_status = "not run"
    else:
        control_status = "passed" if c_low <= null <= c_high else "FAILED"
    if low is None or high is None or math.isnan(mean):
        status = "no interval"
    elif control_status == "FAILED":
        status = "FAILED (its control failed)"
    elif low <= null <= high:
        status = "no difference shown"
    elif (low > null) != (direction > 0):
        status = "reversed: the CI lies on the other side of the claim"
    else:
        status = "holds" if control_status == "passed" else "holds (no control run)"
    sign = "+" if null == 0.0 else ""  # a difference, or a ratio against 1
    return {"headline": headline, "estimate [95% CI]": _fmt(mean, low, high, digits, sign),
            "negative control": control, "control [95% CI]": _fmt(c_mean, c_low, c_high, digits, sign),
            "control": control_status, "headline status": status}
