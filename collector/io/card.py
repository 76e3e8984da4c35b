"""The dataset card written beside every export (``<out>.card.md``): what was collected and how.

A reader of an export needs the assignment mechanism to analyse it, so the card states it in
words and tables: the policies and versions that served pairs, the arms with their
propensities, the counts, the balance of attributes, the attribute effects (AMCE) the
randomisation identifies, the annotator groups, which labels are excluded and why, and any
imported human preference data. Everything is computed from the database at export time.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acquisition.agreement import agreement_labels, agreement_table
from acquisition.balance import indicator, pair_families, smd
from acquisition.editors import EDITORS
from acquisition.effects import amce
from collector.io.frames import card_frame, trl_keep
from collector.store import Store

FORMAT_NOTES = {
    "trl": "TRL preference rows (`prompt`, `chosen`, `rejected` strings), one per label with a "
           "winner; ties, both-bad, skipped and unlabelled pairs are left out.",
    "trl-conversational": "TRL preference rows in conversational form (`prompt` a user message, "
                          "`chosen`/`rejected` an assistant message each), one per label with a winner.",
    "arena": "Chatbot Arena battles (`model_a`, `model_b`, `winner`, `conversation_a/b`), one per "
             "label including ties (`tie`) and both-bad (`tie (bothbad)`); side A is the left "
             "(displayed first) response. ",
    "pairs": "The full served-pair log, one row per served pair (labelled, skipped or unlabelled).",
    "effects": "The conjoint long format for causal estimators, one row per shown response of each "
               "labelled pair (the AMCE's rows): `chosen` (1, 0, ties 0.5), `position`, every attribute "
               "flag and its marginal propensity `<attribute>_propensity` (P(on) given the pair randomised "
               "it). The joint probability of the whole pair is `pair_propensity`, not `propensity_score`, "
               "so DoWhy does not read it as a treatment propensity.",
}
# what model_a/model_b name in an Arena export (``--arena-models``)
ARENA_MODEL_NOTES = {
    "source": "Each \"model\" is the model that wrote the base response where it is known, with the side's "
              "arm after a `+` where the side was edited (`<model>+bold`), else the arm itself (`base`, or the "
              "attributes switched on): a rating is a rating of a model as edited, not of one response.",
    "arm": "Each \"model\" is the side's arm: `base`, or the attributes switched on (`bold+list_format`), so a "
           "rating is that of an arm across responses.",
    "response": "Each \"model\" is one response copy (`response-<id>`).",
}
MAX_ARM_ROWS = 40


def _cell(value: Any, floatfmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float):
        return format(value, floatfmt)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, floatfmt: str = ".3f", formats: dict[str, str] | None = None) -> str:
    """A GitHub-flavoured Markdown table (no dependency on ``tabulate``); ``formats`` overrides
    ``floatfmt`` per column."""
    if df.empty:
        return "_(none)_"
    fmts = [(formats or {}).get(str(c), floatfmt) for c in df.columns]
    header = "| " + " | ".join(str(c) for c in df.columns) + " |"
    rule = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(_cell(v, f) for v, f in zip(row, fmts)) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def suspicion_table(store: Store) -> pd.DataFrame:
    """The suspicion probe's answers per annotator group (and ``all``): how many annotators
    answered, and the share who said a response looked edited (yes) or were not sure; excluded
    annotators left out. Empty when nobody answered."""
    columns = ["annotator_group", "answered", "yes", "not_sure", "share_yes"]
    answers = pd.DataFrame(store.suspicion_answers())
    if answers.empty:
        return pd.DataFrame(columns=columns)
    answers = answers[~answers["excluded"].fillna(0).astype(bool)]
    rows = []
    for group, part in [("all", answers), *sorted(answers.groupby("annotator_group"))]:
        yes = int((part["looked_edited"] == "yes").sum())
        rows.append({"annotator_group": group, "answered": len(part), "yes": yes,
                     "not_sure": int((part["looked_edited"] == "not_sure").sum()),
                     "share_yes": yes / len(part) if len(part) else float("nan")})
    return pd.DataFrame(rows, columns=columns)


def suspicion_section(store: Store) -> str:
    table = suspicion_table(store)
    if table.empty:
        return "No annotator answered the suspicion probe (study setting `suspicion_probe_after`)."
    notes = [a["what"] for a in store.suspicion_answers() if a["looked_edited"] == "yes" and a["what"]][:5]
    text = ("Each annotator was asked once, after the study's number of labels, whether any response looked "
            "edited or templated. Annotators who noticed the manipulation may judge the manipulation (a "
            "demand effect); compare the effects of groups that did and did not.\n\n" + markdown_table(table))
    if notes:
        text += "\n\nWhat gave it away, in their words: " + "; ".join(f"\"{n}\"" for n in notes) + "."
    return text


def _iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def policies_section(store: Store, pairs: pd.DataFrame) -> str:
    policies = pd.DataFrame(store.policies())
    if policies.empty:
        return "No policy has been activated."
    # a pair belongs to the policy version it recorded (quality-control pairs record the QC
    # settings' version under their own name, so a version number alone says nothing)
    keys = ["policy", "policy_version"]
    served = pairs.groupby(keys).size() if len(pairs) else pd.Series(dtype=int)
    labelled = pairs.loc[pairs["status"] == "labelled", keys].groupby(keys).size() if len(pairs) else served
    table = pd.DataFrame({
        "version": policies["version"], "policy": policies["name"],
        "activated": [_iso(t) for t in policies["created_at"]],
        "active now": ["yes" if a else "" for a in policies["is_active"]],
        "served pairs": [int(served.get((n, v), 0)) for n, v in zip(policies["name"], policies["version"])],
        "labels": [int(labelled.get((n, v), 0)) for n, v in zip(policies["name"], policies["version"])],
    })
    configs = []
    for row in policies.to_dict("records"):
        if int(served.get((row["name"], row["version"]), 0)) or row["is_active"]:
            config = json.dumps(row["config"], indent=2, sort_keys=True)
            configs.append(f"Version {row['version']} (`{row['name']}`):\n\n```json\n{config}\n```")
    return markdown_table(table) + "\n\nConfiguration of each version that served pairs or is active:\n\n" + "\n\n".join(configs)


def arms_section(pairs: pd.DataFrame) -> str:
    if pairs.empty:
        return "No pair has been served."
    columns = ["policy", "policy_version", "arm", "served_pair_id", "propensity_score", "arm_propensity"]
    df = pairs[columns].assign(family=pair_families(pairs), labelled=pairs["status"] == "labelled")
    keys = ["policy", "policy_version", "family"]
    summary = df.groupby(keys, sort=True).agg(
        served=("served_pair_id", "size"), labelled=("labelled", "sum"), arms=("arm", "nunique"),
        propensity_min=("propensity_score", "min"), propensity_median=("propensity_score", "median"),
        propensity_max=("propensity_score", "max"), arm_propensity_min=("arm_propensity", "min"),
        arm_propensity_median=("arm_propensity", "median"), arm_propensity_max=("arm_propensity", "max"),
    ).reset_index().rename(columns={"family": "arm family"})
    text = (
        "`propensity_score` is the probability that the policy served exactly that pair to that "
        "annotator; `arm_propensity` is the probability of the arm (edits and display position) "
        "given the prompt and its base pair, the weight an inverse-propensity estimate divides by.\n\n"
        + markdown_table(summary, ".4g")
    )
    arms = df.groupby(["policy", "policy_version", "arm"], sort=True).agg(
        served=("served_pair_id", "size"), labelled=("labelled", "sum"),
        arm_propensity=("arm_propensity", "median"),
    ).reset_index()
    if len(arms) <= MAX_ARM_ROWS:
        text += "\n\nEvery arm (`L:`/`R:` list the attributes switched on, left and right):\n\n" + markdown_table(arms, ".4g")
    else:
        text += (f"\n\n{len(arms)} distinct arms; each row of the export carries its own `arm` and "
                 "`arm_propensity`.")
    return text


def counts_section(store: Store, pairs: pd.DataFrame, imported: pd.DataFrame) -> str:
    counts = store.counts()
    status = pairs["status"].value_counts() if len(pairs) else pd.Series(dtype=int)
    labels = pairs["label"].value_counts() if len(pairs) else pd.Series(dtype=int)
    rows = [
        ("prompts", counts["prompts"]), ("base responses", counts["base_responses"]),
        ("edited copies", counts["edited_responses"]), ("annotators", counts["annotators"]),
        ("served pairs", counts["served_pairs"]), ("labelled", int(status.get("labelled", 0))),
        ("skipped", int(status.get("skipped", 0))), ("unlabelled (open or expired lease)", int(status.get("unlabelled", 0))),
        *[(f"labels: {c}", int(labels.get(c, 0))) for c in ("left", "right", "tie", "both_bad")],
        ("imported human preferences", len(imported)),
    ]
    return markdown_table(pd.DataFrame(rows, columns=["what", "count"]))


def groups_section(store: Store, pairs: pd.DataFrame) -> str:
    annotators = pd.DataFrame(store.annotators())
    if annotators.empty:
        return "No annotators."
    labelled_groups = pairs.loc[pairs["status"] == "labelled", "annotator_group"]
    rows = []
    for group, part in annotators.groupby("group_name", sort=True):
        covariates = sorted({k for c in part["covariates"] for k in json.loads(c or "{}")})
        objectives = sorted({o for o in part["objective"] if o})
        row = {
            "group": group, "annotators": len(part),
            "simulated": int(part["is_simulated"].sum()),
            "objectives": ", ".join(objectives), "covariates recorded": ", ".join(covariates),
            "labels": int((labelled_groups == group).sum()),
        }
        if "excluded" in part.columns:
            row["excluded annotators"] = int(part["excluded"].fillna(0).astype(int).sum())
        rows.append(row)
    return markdown_table(pd.DataFrame(rows))


def model_labels_section(pairs: pd.DataFrame) -> str:
    """Which labels came from LLM judges (``python -m collector judge``), by model and template."""
    judged = pairs[(pairs["status"] == "labelled") & pairs["judge"].notna()] if "judge" in pairs else pairs[:0]
    n_labels = int((pairs["status"] == "labelled").sum()) if not pairs.empty else 0
    if judged.empty:
        return "None: no label came from a model judge."
    rows = []
    for group, part in judged.groupby("annotator_group", sort=True):
        records = [json.loads(j) for j in part["judge"].unique()]  # frames.judge_summary
        templates = {r["template"] for r in records}
        rows.append({"group": group, "model": ", ".join(sorted({r["model"] for r in records})),
                     "backend": ", ".join(sorted({r["backend"] for r in records})),
                     "labels": len(part), "share of all labels": f"{len(part) / n_labels:.1%}",
                     "templates (sha256)": ", ".join(sorted(templates))})
    return ("These labels came from LLM judges, served and recorded through the same path as people's, as "
            "annotators of a group of their own (`llm:<model>`); each label's `judgement` holds the model, "
            "decoding, template, messages and raw reply. Their AMCE is in the effects table beside the human "
            "groups'. Filter on `annotator_group` to keep them out of human-preference training.\n\n"
            + markdown_table(pd.DataFrame(rows)))


def measured_attributes(store: Store, pairs: pd.DataFrame) -> dict[str, dict[int, float]]:
    """``{attribute: {response id: indicator read on its text}}`` for every response a pair
    showed (``acquisition.balance.indicator`` on the text alone), each text read and measured
    once: texts repeat across pairs, measuring is what costs, and the card's frame holds ids,
    not texts."""
    ids = sorted({int(i) for side in ("left", "right") for i in pairs[f"{side}_response_id"].dropna()})
    out: dict[str, dict[int, float]] = {a: {} for a in sorted(EDITORS)}
    for start in range(0, len(ids), 5000):
        texts = store.response_texts(ids[start:start + 5000])
        chunk = pd.DataFrame({"text": list(texts.values())})
        for attribute in out:
            out[attribute].update(zip(texts, indicator(chunk, "text", attribute).astype(float)))
    return out


def _indicator(df: pd.DataFrame, side: str, attribute: str, measured: dict[str, dict[int, float]]) -> pd.Series:
    """``acquisition.balance.indicator`` of one attribute: the treatment received where it was
    randomised, else what the response's text shows (``measured_attributes``)."""
    values = df[f"{side}_response_id"].map(measured[attribute]).astype(float)
    flags = df.get(f"{side}_{attribute}")
    if flags is not None:
        values = flags.astype("Float64").astype(float).where(flags.notna(), values)
        assigned = df.get(f"{side}_{attribute}_assigned")
        if assigned is not None:  # randomised where it does not apply: not in the estimand
            values = values.where(~(assigned.notna() & flags.isna()), np.nan)
    return values


def _smd(a: pd.Series, b: pd.Series) -> float:
    keep = a.notna() & b.notna()
    return smd(a[keep], b[keep]) if keep.any() else math.nan


def balance_section(pairs: pd.DataFrame, measured: dict[str, dict[int, float]]) -> str:
    """Chosen vs rejected, and left vs right within annotator groups and prompt types, as in
    ``acquisition.balance`` (``chosen_rejected_smd``, ``balance_report``); one attribute's
    indicators at a time (a million pairs' worth of every attribute at once is gigabytes)."""
    keep = trl_keep(pairs).to_numpy()
    if not keep.any():
        return "No labels with a winner yet."
    won = pairs.loc[keep, "label"].to_numpy() == "left"  # the trl rows' chosen side, without a copy of them
    rows = []
    for attribute in sorted(EDITORS):
        left = _indicator(pairs, "left", attribute, measured).to_numpy()[keep]
        right = _indicator(pairs, "right", attribute, measured).to_numpy()[keep]
        chosen, rejected = pd.Series(np.where(won, left, right)), pd.Series(np.where(won, right, left))
        rows.append({"attribute": attribute, "smd": _smd(chosen, rejected),
                     "n": int((chosen.notna() & rejected.notna()).sum()),
                     "chosen_rate": chosen.mean(), "rejected_rate": rejected.mean()})
    table = pd.DataFrame(rows)
    table = table[table["n"] > 0]
    text = ("Standardised mean difference (SMD) of each attribute between chosen and rejected "
            "responses (|SMD| < 0.1 is balanced; an attribute comes from the edit vector where "
            "it was randomised and is read from the text otherwise):\n\n" + markdown_table(table))
    strata = {"all": None}
    for col in ("annotator_group", "task_type"):
        for value, index in pairs.groupby(col, sort=True).indices.items():
            strata[f"{col}={value}"] = index
    pivot: dict[str, dict[str, float]] = {name: {} for name in strata}
    for attribute in sorted(EDITORS):
        left = _indicator(pairs, "left", attribute, measured).to_numpy()
        right = _indicator(pairs, "right", attribute, measured).to_numpy()
        for name, index in strata.items():
            a, b = (left, right) if index is None else (left[index], right[index])
            pivot[name][attribute] = _smd(pd.Series(a), pd.Series(b))
    frame = pd.DataFrame(pivot).dropna(how="all").rename_axis("attribute").reset_index()
    if len(frame):
        text += "\n\nSMD between left and right, by annotator group and prompt type:\n\n" + markdown_table(frame)
    return text


def effects_section(pairs: pd.DataFrame) -> str:
    if pairs.empty or not pairs["label"].isin(["left", "right", "tie"]).any():
        return "No labels yet."
    parts = []
    for by, title in (((), "All annotators"), (("annotator_group",), "By annotator group"),
                      (("task_type",), "By prompt type")):
        table = amce(pairs, by=by)
        if table.empty:
            continue
        table = table.assign(ci95=[f"[{lo:+.3f}, {hi:+.3f}]" if not math.isnan(lo) else ""
                                   for lo, hi in zip(table["ci_low"], table["ci_high"])])
        parts.append(f"{title}:\n\n" + markdown_table(
            table[[*by, "attribute", "estimate", "se", "ci95", "n_labels", "method"]], ".3f", {"estimate": "+.3f"}))
    if not parts:
        return "No attribute was randomised on both sides of a labelled pair, so no effect is identified."
    return (
        "**Estimand: the AMCE under the study's own design** (cregg's convention): the average marginal "
        "component effect of each randomised attribute on the choice, "
        "P(a response is chosen | attribute on) - P(chosen | off), with the other attributes at the rates "
        "the design drew them, from the randomised arms only. Within each design stratum (policy, version, "
        "recorded marginals) it is a difference in means, weighted only where the design made an arm depend "
        "on something observed (the export's `weight`), with 95% confidence intervals clustered by served "
        "pair (`acquisition/effects.py`); the effects export's DoWhy/EconML recipe estimates the same. "
        "`deconfound effects --estimand uniform` gives the AMCE with the other attributes reweighted to "
        "equal arms instead. "
        "Ties count as half a choice; both-bad labels are left out. The treatment is the one received, "
        "read on the text served (an edit whose manipulation check failed counts as off; the draw is kept "
        "as `<side>_<attr>_assigned` for intention to treat), and the estimand is the effect among pairs "
        "where the attribute applies to both responses (a list needs three sentences, cheer never goes on "
        "a refusal): `n_labels` counts those pairs.\n\n" + "\n\n".join(parts)
    )


def agreement_section(pairs: pd.DataFrame) -> str:
    columns = ["label", "left_response_id", "right_response_id", "annotator_id", "annotator_group"]
    table = agreement_table(agreement_labels(pairs, columns)) if not pairs.empty else pd.DataFrame()
    if table.empty or not (table["items"] > 0).any():
        return "No item has been labelled by two or more annotators (set `overlap` to 2 or more to measure agreement)."
    return ("Krippendorff's alpha (nominal) and pairwise agreement on items (unordered response pairs) that two "
            "or more annotators labelled, overall and within each annotator group; choices coded by which "
            "response won (not the side it was shown on), tie or both bad; 95% bootstrap CI over items:\n\n"
            + markdown_table(table, ".3f"))


def exclusions_section(pairs: pd.DataFrame, fmt: str | None) -> str:
    lines = []
    if fmt in ("trl", "trl-conversational"):
        lines.append("By format: ties, both-bad, skipped and unlabelled pairs are not in a TRL export.")
    elif fmt == "arena":
        lines.append("By format: skipped and unlabelled pairs are not in an Arena export.")
    if "qc_kind" in pairs.columns:
        qc = pairs[pairs["qc_kind"].isin(["gold", "attention"]) & (pairs["status"] == "labelled")]
        if len(qc):
            lines.append(f"Quality-control items (gold pairs, attention checks): {len(qc)} labels, kept "
                         "in the pairs log (`qc_kind`) and left out of the TRL and Arena exports and the effects.")
    if "excluded" in pairs.columns:
        excluded = pairs[pairs["excluded"].fillna(False).astype(bool) & (pairs["status"] == "labelled")]
        if len(excluded):
            reasons = excluded.groupby(excluded["excluded_reason"].fillna("(no reason given)")).agg(
                labels=("served_pair_id", "size"), annotators=("annotator_id", "nunique")).reset_index()
            lines.append(f"{len(excluded)} labels are excluded from training, the TRL and Arena exports "
                         "and the effects (kept in the database and in the pairs log, flagged "
                         "`excluded`), for these reasons:\n\n" + markdown_table(reasons.rename(
                             columns={"excluded_reason": "reason"})))
        else:
            lines.append("No annotator's labels are excluded.")
    else:
        lines.append("No annotator's labels are excluded (this database records no exclusions).")
    return "\n\n".join(lines)


def imported_section(imported: pd.DataFrame) -> str:
    if imported.empty:
        return "None: every label here was collected by Deconfound."
    table = imported.groupby(["source", "format"], sort=True).agg(
        preferences=("id", "size"), ties=("tie", "sum"), prompts=("prompt_id", "nunique"),
    ).reset_index()
    return ("Human preferences imported with the pool (table `imported_preferences`; not in this "
            "export, which holds the labels collected here):\n\n" + markdown_table(table))


STYLE_ELEMENTS = ("sum_assistant_tokens", "header_count", "list_count", "bold_count")  # FastChat's V1, per side


def style_differences(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per style element of FastChat's ``STYLE_CONTROL_ELEMENTS_V1``, the A-minus-B differences
    over the battles, as its ``preprocess_for_style`` computes them before standardising (token
    differences as a ratio of the sum plus one)."""
    def total(value: Any) -> int:
        return int(sum(value.values())) if isinstance(value, dict) else int(value)

    out = {}
    for element in STYLE_ELEMENTS:
        a = np.array([total(m[f"{element}_a".replace("sum_assistant_tokens_a", "sum_assistant_a_tokens")])
                      for m in frame["conv_metadata"]], float)
        b = np.array([total(m[f"{element}_b".replace("sum_assistant_tokens_b", "sum_assistant_b_tokens")])
                      for m in frame["conv_metadata"]], float)
        out[element] = (a - b) / (a + b + 1) if element == "sum_assistant_tokens" else a - b
    return out


def style_control_section(frame: pd.DataFrame | dict[str, np.ndarray]) -> str:
    """Which of FastChat's style-control elements vary in this export. FastChat standardises each
    element's A-minus-B difference; one that never varies divides by a zero spread and turns
    every rating into 1000, so it must be left out of ``style_elements``."""
    diffs = style_differences(frame) if isinstance(frame, pd.DataFrame) else frame  # an export's, batch by batch
    if not len(next(iter(diffs.values()))):
        return "No battles."
    varying = [e for e, d in diffs.items() if np.std(d) > 0]
    constant = [e for e in diffs if e not in varying]
    rows = pd.DataFrame({"element": list(diffs), "std of A - B": [float(np.std(d)) for d in diffs.values()],
                         "varies": ["yes" if e in varying else "no: leave it out" for e in diffs]})
    keep = [f"{e.replace('sum_assistant_tokens', 'sum_assistant')}{'_a_tokens' if e == 'sum_assistant_tokens' else '_a'}"
            for e in varying]
    keep += [k.replace("_a_tokens", "_b_tokens") if k.endswith("_a_tokens") else k[:-2] + "_b" for k in keep]
    text = ("FastChat's style control (`compute_style_control`, `rating_systems.py`) standardises the A-minus-B "
            "difference of each element of `STYLE_CONTROL_ELEMENTS_V1`; an element that never varies divides "
            "by zero and makes every rating 1000 and every coefficient 0.\n\n" + markdown_table(rows, ".3f"))
    if constant:
        text += ("\n\nPass only the varying elements: `preprocess_for_style(df, style_elements=" + json.dumps(keep)
                 + f", apply_ratio={[int('tokens' in k) for k in keep[:len(keep) // 2]]})` then `fit_contextual_bt`, "
                 "instead of `compute_style_control`, which uses all eight.")
    return text


def stopping_section(store: Store) -> str:
    """How the study was meant to end and how it did: by quota, or by its stopping rule (every
    named attribute resolved by its 95% confidence sequence, or a maximum number of labels), so a
    reader knows whether the sample size was chosen in advance or by looking at the data."""
    stored = json.loads(store.get_meta("study_config") or "{}")
    names, rope, cap = stored.get("stop_when_resolved") or [], stored.get("stop_rope") or 0.0, stored.get("max_labels") or 0
    if not names and not cap:
        return ("No stopping rule was set: the sample size is what was collected by the time of this export "
                "(quotas, if any, bound each annotator). The fixed-sample CIs in this card are valid only if the "
                "size was not chosen by looking at them; the confidence sequences (`cs_low`, `cs_high` in "
                "`deconfound effects`) are valid either way.")
    rule = []
    if names:
        rule.append("stop once every one of " + ", ".join(f"`{a}`" for a in names) + " is resolved by its 95% "
                    "confidence sequence (it excludes 0" + (f", or lies inside [-{rope:g}, {rope:g}]" if rope else "")
                    + ")")
    if cap:
        rule.append(f"stop at {cap:,} labels")
    text = "The study was run with a stopping rule: " + "; or ".join(rule) + ". "
    record = json.loads(store.get_meta("study_stopped") or "null")
    if record is None:
        return text + "It had not stopped by its rule when this export was made."
    sequences = ", ".join(f"`{a}` [{low:.3f}, {high:.3f}]" for a, (low, high) in record.get("sequences", {}).items())
    return (text + f"It stopped by design at {record['labels']:,} labels on "
            f"{datetime.fromtimestamp(record['at'], timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}: {record['reason']}."
            + (f" The confidence sequences then: {sequences}." if sequences else "")
            + " The sequences keep their 95% coverage at a stopping time chosen this way; the fixed-sample CIs do "
              "not, so read effects from the sequences. Labels given after the stop was recorded, if any, are in the "
              "data.")


def _card_terms(store: Store) -> Any:
    """The study's license and languages as stored with its settings (validated when they were
    set: ``deconfound study set license=cc-by-4.0``), defaults where unset."""
    from types import SimpleNamespace

    stored = json.loads(store.get_meta("study_config") or "{}")
    return SimpleNamespace(license=stored.get("license", "other"),
                           license_name=stored.get("license_name", "study-terms-not-set"),
                           license_link=stored.get("license_link", "LICENSE.md"),
                           languages=stored.get("languages", ["en"]))


def hub_front_matter(features: list[dict[str, Any]], n: int, data_files: str, fmt: str | None, study: Any = None,
                     num_bytes: int | None = None) -> str:
    """The YAML header the Hugging Face Hub reads from a dataset card: license (with its name and
    link where it is ``other``), languages, task, size, tags, the data files, the features and the
    split's size in rows and bytes (JSON flow style, which is YAML). ``study``: the study settings
    (``collector.serving.study.StudyConfig``) that name the license and languages; ``features``:
    the data file's columns (``collector.io.schema.hub_features``), ``n`` its rows."""
    size = next(label for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                                           (1_000_000, "100K<n<1M"), (float("inf"), "1M<n<10M")) if n < bound)
    license = getattr(study, "license", "other")
    fields: dict[str, Any] = {"license": license}
    if license == "other":  # the Hub asks for the terms' name and where to read them
        fields["license_name"] = getattr(study, "license_name", "study-terms-not-set")
        fields["license_link"] = getattr(study, "license_link", "LICENSE.md")
    split: dict[str, Any] = {"name": "train", "num_examples": n}
    if num_bytes is not None:
        split["num_bytes"] = num_bytes
    fields.update({
        "language": list(getattr(study, "languages", ["en"])),
        "pretty_name": f"Deconfound {fmt or 'export'}",
        "task_categories": ["text-generation", "text-classification"],
        "tags": ["preference", "rlhf", "human-feedback", "reward-modeling", "causal-inference", "deconfound"],
        "size_categories": [size],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": data_files}]}],
        "dataset_info": {"features": features, "splits": [split],
                         **({"dataset_size": num_bytes, "download_size": num_bytes} if num_bytes is not None else {})},
    })
    return "---\n" + "".join(f"{k}: {json.dumps(v, ensure_ascii=False)}\n" for k, v in fields.items()) + "---\n\n"


def build_card(store: Store, pairs: pd.DataFrame, fmt: str | None = None, export_name: str | None = None,
               rows: int | None = None, frame: pd.DataFrame | None = None, data_files: str | None = None,
               arena_models: str = "source", num_bytes: int | None = None,
               features: list[dict[str, Any]] | None = None, style: dict[str, np.ndarray] | None = None) -> str:
    """The Markdown dataset card for an export of ``store``, from its ``pairs_frame`` or the
    ``card_frame`` of it (``fmt``, ``export_name``, ``rows`` describe the file it sits beside;
    all optional). With the exported ``frame``, or its ``features`` and ``rows`` where the file
    was written a batch at a time, the card starts with the Hub's YAML front matter
    (``data_files``: the data file's path relative to the card, default ``export_name``); an
    Arena card's style-control section reads ``style`` (``style_differences`` of every battle)
    or the ``frame``."""
    from collector.io.schema import hub_features

    pairs = card_frame(pairs)
    if frame is not None:
        features, rows = hub_features(frame), len(frame)
        style = style_differences(frame) if fmt == "arena" else None
    imported = pd.DataFrame(store.imported_preferences())
    title = f"Dataset card: {export_name}" if export_name else "Dataset card"
    intro = [f"# {title}",
             f"Exported by Deconfound on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} "
             f"from `{Path(store.path).name}`."]
    if fmt:
        note = FORMAT_NOTES.get(fmt, "") + (ARENA_MODEL_NOTES[arena_models] if fmt == "arena" else "")
        intro.append(f"Format `{fmt}`{f', {rows} rows' if rows is not None else ''}: {note}")
    intro.append(
        "Every row carries its assignment mechanism: `policy`, `policy_version`, `arm`, "
        "`propensity_score` (the joint probability of the whole displayed pair, about one over the "
        "number of possible pairs: not a per-attribute propensity), `arm_propensity` (that of its edits "
        "and display order), the edit vectors and the display position. "
        "Column descriptions: [Export formats](docs/data.md#export-formats) in the Deconfound repository."
    )
    sections = [
        ("Counts", counts_section(store, pairs, imported)),
        ("Policies and versions", policies_section(store, pairs)),
        ("Arms and propensities", arms_section(pairs)),
        ("Annotator groups", groups_section(store, pairs)),
        ("Labels from models", model_labels_section(pairs)),
        ("Balance", balance_section(pairs, measured_attributes(store, pairs))),
        ("Attribute effects (AMCE)", effects_section(pairs)),
        ("Agreement", agreement_section(pairs)),
        ("Suspicion probe", suspicion_section(store)),
        ("Stopping", stopping_section(store)),
        ("Excluded labels", exclusions_section(pairs, fmt)),
        ("Imported data", imported_section(imported)),
    ]
    if fmt == "arena" and style is not None:
        sections.insert(3, ("Style control", style_control_section(style)))
    body = "\n\n".join(intro) + "\n"
    if features is not None:
        body = hub_front_matter(features, rows or 0, data_files or export_name or "data.jsonl", fmt,
                                _card_terms(store), num_bytes) + body
    for heading, text in sections:
        body += f"\n## {heading}\n\n{text}\n"
    return body
