"""The export formats as data frames: the full served-pair log (``pairs_frame``, read from the
database once) and the formats derived from it (TRL standard and conversational, Chatbot Arena)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from acquisition.core.turns import prompt_turns
from acquisition.editors import EDITORS, realised_flag
from acquisition.policies import POLICIES, parse_policy_config
from acquisition.weights import design_weights
from collector.store import Store

ARENA_WINNER = {"left": "model_a", "right": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds")


def _flags(edit_vector: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Two nullable boolean columns per known attribute: ``<side>_<attr>``, the treatment
    received (read on the text served: a failed edit is off; None where the attribute was not
    randomised or does not apply to the response), and ``<side>_<attr>_assigned``, the switch
    the policy drew (for intention-to-treat)."""
    out: dict[str, Any] = {}
    for a in sorted(EDITORS):
        out[f"{prefix}_{a}"] = realised_flag(edit_vector.get(a))
        out[f"{prefix}_{a}_assigned"] = bool(edit_vector[a]["on"]) if a in edit_vector else None
    return out


def _static_marginals(store: Store) -> dict[tuple[str, int], str]:
    """``(policy, version) -> edit_marginals`` for designs whose marginals follow from the
    config alone (``Policy.static_marginals``), for pairs served before they were recorded."""
    out = {}
    for row in store.policies():
        cls = POLICIES.get(row["name"])
        if cls is not None and "static_marginals" in cls.__dict__:  # only those that declare them
            marginals = cls.static_marginals(parse_policy_config(row["name"], row["config"]))
            if marginals:
                out[(row["name"], row["version"])] = json.dumps(marginals, sort_keys=True)
    return out


def pairs_frame(store: Store) -> pd.DataFrame:
    """Every served pair, labelled or not, one row each (read a batch at a time: the typed
    frame is the only whole copy held)."""
    parts = list(pairs_batches(store))
    if not parts:
        return empty_pairs_frame()
    return parts[0] if len(parts) == 1 else _typed(pd.concat(parts, ignore_index=True))


def pairs_batches(store: Store) -> Iterator[pd.DataFrame]:
    """``pairs_frame`` a batch of served pairs at a time (``Store.served_pair_log_batches``),
    each batch typed as the whole frame is: an export streams these to its file."""
    static = _static_marginals(store)
    probes = {a["annotator_id"]: a for a in store.suspicion_answers()}
    for batch in store.served_pair_log_batches():
        yield _pairs_batch(batch, static, probes)


def empty_pairs_frame() -> pd.DataFrame:
    """``pairs_frame`` of a database with no served pair: every column, typed, no row."""
    return _pairs_batch([], {}, {})


def _pairs_batch(log: list[dict[str, Any]], static: dict[tuple[str, int], str],
                 probes: dict[int, dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for r in log:
        left_ev, right_ev = r["left_edit_vector"], r["right_edit_vector"]  # EditVector, from the store
        status = r["status"]
        if status in ("served", "expired"):  # open, or replaced after its lease ran out
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
            "left_source_model": r["left_source_model"], "right_source_model": r["right_source_model"],
            "left_generation": r.get("left_generation"), "right_generation": r.get("right_generation"),
            "judgement": r.get("judgement"),
            "left_edit_vector": left_ev.to_json(), "right_edit_vector": right_ev.to_json(),
            "position_swapped": bool(r["position_swapped"]),
            "policy": r["policy_name"], "policy_version": r["policy_version"], "arm": r["arm"],
            "family": r.get("family"),
            "propensity_score": r["propensity_score"], "arm_propensity": r["arm_propensity"],
            "acquisition_score": r["acquisition_score"], "model_version": r["model_version"],
            "seed": r["seed"],
            "served_at": _iso(r["served_at"]), "shown_at": _iso(r["shown_at"]),
            "labelled_at": _iso(r["labelled_at"]), "skipped_at": _iso(r["skipped_at"]),
            "latency_ms": r["latency_ms"],
            "qc_kind": r["qc_kind"], "origin_served_pair_id": r["origin_served_pair_id"],
            "qc_expected": r["qc_expected"], "excluded": bool(r["annotator_excluded"]),
            "excluded_reason": r["annotator_excluded_reason"],
            "study_version": r["study_version"], "objective": r["objective"],
            "objective_propensity": r["objective_propensity"],
            "edit_marginals": r.get("edit_marginals") or static.get((r["policy_name"], r["policy_version"])),
            "annotator_suspected_edit": probes.get(r["annotator_id"], {}).get("looked_edited"),
            "annotator_suspicion_note": probes.get(r["annotator_id"], {}).get("what"),
            **_flags(left_ev, "left"), **_flags(right_ev, "right"),
        })
    return _typed(pd.DataFrame(rows, columns=_pairs_columns()))


def _pairs_columns() -> list[str]:
    base = [
        "served_pair_id", "status", "label", "strength", "rationale", "annotator_id",
        "annotator_group", "annotator_objective", "annotator_covariates", "prompt_id",
        "task_type", "prompt", "left_response_id", "right_response_id", "left_base_response_id",
        "right_base_response_id", "left_text", "right_text", "left_source_model", "right_source_model",
        "left_generation", "right_generation", "judgement", "left_edit_vector",
        "right_edit_vector", "position_swapped", "policy", "policy_version", "arm", "family",
        "propensity_score", "arm_propensity", "acquisition_score", "model_version", "seed",
        "served_at", "shown_at", "labelled_at", "skipped_at", "latency_ms",
        "qc_kind", "origin_served_pair_id", "qc_expected", "excluded", "excluded_reason",
        "study_version", "objective", "objective_propensity", "edit_marginals",
        "annotator_suspected_edit", "annotator_suspicion_note",
    ]
    return (base + [f"{s}_{a}" for s in ("left", "right") for a in sorted(EDITORS)]
            + [f"{s}_{a}_assigned" for s in ("left", "right") for a in sorted(EDITORS)])


def trl_keep(pairs: pd.DataFrame, include_excluded: bool = False, include_qc: bool = False) -> pd.Series:
    """Which rows of a ``pairs_frame`` (or of ``assignment_frame``) a ``trl`` export keeps: a
    label with a winner; no gold pair or attention check unless ``include_qc``; no excluded
    annotator's label unless ``include_excluded``."""
    keep = pairs["label"].isin(["left", "right"])
    if not include_qc:
        keep &= pairs["qc_kind"].isin(["regular", "repeat"])
    if not include_excluded:
        keep &= ~pairs["excluded"].astype(bool)
    return keep


TRL_COLUMNS = [
    "prompt", "chosen", "rejected", "served_pair_id", "prompt_id", "task_type",
    "chosen_response_id", "rejected_response_id", "chosen_position", "chosen_edit_vector",
    "rejected_edit_vector", "strength", "rationale", "annotator_id", "annotator_group", "annotator_covariates",
    "policy", "policy_version", "arm", "family", "propensity_score", "arm_propensity", "weight",
    "model_version", "labelled_at", "latency_ms",
] + [f"{s}_{a}" for a in sorted(EDITORS) for s in ("chosen", "rejected")] + [
    f"{s}_{a}_assigned" for a in sorted(EDITORS) for s in ("chosen", "rejected")]
_TRL_SIDES = {"chosen": "text", "rejected": "text", "chosen_response_id": "response_id",
              "rejected_response_id": "response_id", "chosen_edit_vector": "edit_vector",
              "rejected_edit_vector": "edit_vector",
              **{f"{s}_{a}{x}": f"{a}{x}" for a in EDITORS for s in ("chosen", "rejected") for x in ("", "_assigned")}}


def trl_frame(pairs: pd.DataFrame, include_excluded: bool = False, include_qc: bool = False,
              weights: pd.Series | None = None) -> pd.DataFrame:
    """Labelled pairs with a winner (from ``pairs_frame``) as TRL preference rows; ties and
    both-bad are left out, and so are gold pairs and attention checks (unless ``include_qc``)
    and excluded annotators' labels (unless ``include_excluded``). Repeats stay: they are real
    labels of their item. ``weight`` is ``design_weights`` of these rows, or, where an export
    writes them a batch at a time, ``weights`` (by ``served_pair_id``, from ``trl_weights``:
    the weights of the whole export). Columns of ``TRL_COLUMNS`` whose source is not in
    ``pairs`` (a ``card_frame`` has no texts) are left out."""
    rows = pairs[trl_keep(pairs, include_excluded, include_qc)].reset_index(drop=True)
    left = (rows["label"] == "left").to_numpy()
    out: dict[str, Any] = {}
    for column in TRL_COLUMNS:
        if column == "chosen_position":
            out[column] = pd.Series(np.where(left, "left", "right"), dtype=object)
        elif column == "weight":
            out[column] = None
        elif column in _TRL_SIDES:
            source = _TRL_SIDES[column]
            first, second = ("left", "right") if column.startswith("chosen") else ("right", "left")
            if f"{first}_{source}" in rows.columns:
                out[column] = rows[f"{first}_{source}"].where(left, rows[f"{second}_{source}"])
        elif column in rows.columns:
            out[column] = rows[column]
    df = pd.DataFrame(out, columns=[c for c in TRL_COLUMNS if c in out])
    # the stabilised inverse probability of what the design made depend on covariates: exactly 1
    # where an arm depends on nothing observed (acquisition.weights; docs/data.md, "Weights")
    if weights is not None:
        df["weight"] = rows["served_pair_id"].map(weights).astype(float)
    else:
        df["weight"] = design_weights(df) if len(df) else pd.Series(dtype=float)
    return _typed(df)


def assignment_frame(store: Store) -> pd.DataFrame:
    """Every served pair's ``served_pair_id``, ``policy``, ``policy_version``, ``arm``,
    ``arm_propensity``, ``qc_kind``, ``label`` and ``excluded`` as ``pairs_frame`` has them,
    without the rest (``Store.assignment_log_batches``): what ``trl_keep`` and the design
    weights read, for a million labels in tens of MB."""
    parts = []
    for batch in store.assignment_log_batches():
        parts.append(pd.DataFrame({
            "served_pair_id": np.array([r["id"] for r in batch], dtype=np.int64),
            "policy": [r["policy_name"] for r in batch],
            "policy_version": np.array([r["policy_version"] for r in batch], dtype=np.int64),
            "arm": [r["arm"] for r in batch],
            "arm_propensity": np.array([r["arm_propensity"] for r in batch], dtype=float),
            "qc_kind": [r["qc_kind"] for r in batch], "label": [r["choice"] for r in batch],
            "excluded": np.array([bool(r["annotator_excluded"]) for r in batch]),
        }))
    columns = ["served_pair_id", "policy", "policy_version", "arm", "arm_propensity", "qc_kind", "label", "excluded"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def trl_weights(store: Store, include_excluded: bool = False, include_qc: bool = False) -> pd.Series:
    """The ``weight`` of every row a ``trl`` export keeps, by ``served_pair_id``: what
    ``trl_frame`` computes over the whole frame, for an export that writes a batch at a time."""
    rows = assignment_frame(store)
    rows = rows[trl_keep(rows, include_excluded, include_qc)].reset_index(drop=True)
    return pd.Series(design_weights(rows), index=rows["served_pair_id"].to_numpy(), dtype=float)


# what the dataset card reads of a pairs frame (``card_frame``): an export keeps only these of
# every row on its way through the log; texts, timestamps and free text are the bulk of a row
CARD_COLUMNS = ["served_pair_id", "status", "label", "annotator_id", "annotator_group", "task_type",
                "left_response_id", "right_response_id", "left_edit_vector", "right_edit_vector", "policy",
                "policy_version", "arm", "family", "propensity_score", "arm_propensity", "qc_kind", "excluded",
                "excluded_reason", "edit_marginals"] + [
    f"{s}_{a}{x}" for x in ("", "_assigned") for s in ("left", "right") for a in sorted(EDITORS)]


def judge_summary(judgement: Any) -> str | None:
    """What the card says of an LLM judge's label (``judgement``'s model, backend, and its
    template's sha256), as one short JSON string; None for a person's label."""
    if not isinstance(judgement, str):
        return None
    record = json.loads(judgement)
    template = hashlib.sha256(json.dumps(record.get("template"), sort_keys=True).encode()).hexdigest()[:12]
    return json.dumps({"model": str(record.get("model")), "backend": str(record.get("backend")),
                       "template": template}, sort_keys=True)


def card_frame(pairs: pd.DataFrame, interned: dict[str, dict[Any, Any]] | None = None) -> pd.DataFrame:
    """A ``pairs_frame`` (or a batch of one) as the dataset card reads it: the columns of
    ``CARD_COLUMNS`` it has, ``judge`` (``judge_summary``) in ``judgement``'s place, and each
    repeated string held once (``interned``: a cache shared by the batches of one export). An
    already slim frame comes back as it is."""
    if "judge" in pairs.columns and "left_text" not in pairs.columns:
        return pairs
    out = pairs[[c for c in CARD_COLUMNS if c in pairs.columns]].copy()
    judges = pairs["judgement"] if "judgement" in pairs.columns else pd.Series(None, index=pairs.index, dtype=object)
    out["judge"] = pd.Series([judge_summary(j) for j in judges], index=pairs.index, dtype=object)
    interned = {} if interned is None else interned
    for column in out.columns:
        if column.startswith(("left_", "right_")) and column.split("_", 1)[1].removesuffix("_assigned") in EDITORS:
            out[column] = out[column].astype("boolean")  # two bytes a row, not an object pointer
        # pandas' own str dtype holds every value's bytes: here one pointer each
        elif out[column].dtype == object or pd.api.types.is_string_dtype(out[column].dtype):
            cache = interned.setdefault(column, {})
            out[column] = pd.Series([v if not isinstance(v, str) else cache.setdefault(v, v) for v in out[column]],
                                    index=out.index, dtype=object)
    return out


def imported_trl_frame(store: Store) -> pd.DataFrame:
    """The imported human preferences with a winner as ``trl`` rows: ``policy`` is
    ``imported:<file>``, ``arm`` ``imported``, ``annotator_group`` ``imported``, the judge's
    covariates (Arena's judge, language, tstamp) in ``rationale``'s place as JSON under
    ``annotator_covariates``; no propensity (nobody assigned these pairs: they are observational)."""
    rows = []
    for r in store.imported_preferences():
        if r["outcome"] != "chosen":
            continue
        rows.append({"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"],
                     "prompt_id": r["prompt_id"], "task_type": r["task_type"],
                     "chosen_response_id": r["chosen_response_id"], "rejected_response_id": r["rejected_response_id"],
                     "annotator_group": "imported", "policy": f"imported:{r['source']}", "arm": "imported",
                     "family": "imported", "weight": 1.0,
                     "labelled_at": _iso(r["created_at"]), "annotator_covariates": r.get("covariates")})
    return pd.DataFrame(rows)


def with_imported(df: pd.DataFrame, store: Store) -> pd.DataFrame:
    """``df`` (a ``trl`` frame) followed by the imported preferences in the same columns (plus
    ``annotator_covariates``)."""
    imported = imported_trl_frame(store)
    if imported.empty:
        return df
    out = pd.concat([df, imported_trl_rows(imported)], ignore_index=True)
    return _typed(out[list(df.columns)])  # the same columns and types as without the imported rows


def imported_trl_rows(imported: pd.DataFrame) -> pd.DataFrame:
    """``imported_trl_frame``'s rows in every column of a ``trl`` frame, typed as one."""
    return _typed(imported.reindex(columns=TRL_COLUMNS))


def trl_conversational_frame(pairs: pd.DataFrame, df: pd.DataFrame | None = None) -> pd.DataFrame:
    """``trl_frame`` in TRL's conversational form: the prompt as its messages (a multi-turn
    request keeps every turn, ``acquisition.core.turns``), chosen and rejected as one assistant
    message each; every other column as in ``trl``."""
    df = trl_frame(pairs) if df is None else df.copy()
    df["prompt"] = [prompt_turns(t) for t in df["prompt"]]  # a dialogue keeps its turns
    for col in ("chosen", "rejected"):
        df[col] = [[{"role": "assistant", "content": t}] for t in df[col]]
    return df


ARENA_MODELS = ("source", "arm", "response")
_HEADER = re.compile(r"^(#{1,6})\s", re.MULTILINE)
_ORDERED = re.compile(r"^\s*\d+\.\s", re.MULTILINE)
_UNORDERED = re.compile(r"^\s*[-*+]\s", re.MULTILINE)
_TOKEN = re.compile(r"\w+|[^\w\s]")


def style_counts(text: str) -> dict[str, Any]:
    """What FastChat's style control reads of one response: tokens (word and punctuation
    tokens, not tiktoken's), markdown headers by level, ordered and unordered list items, and
    bold spans (``**x**``, ``__x__``)."""
    headers = {f"h{k}": 0 for k in range(1, 7)}
    for m in _HEADER.finditer(text):
        headers[f"h{len(m.group(1))}"] += 1
    return {"tokens": len(_TOKEN.findall(text)), "header_count": headers,
            "list_count": {"ordered": len(_ORDERED.findall(text)), "unordered": len(_UNORDERED.findall(text))},
            "bold_count": {"**": len(re.findall(r"\*\*[^*\n]+\*\*", text)), "__": len(re.findall(r"__[^_\n]+__", text))}}


def conv_metadata(prompt: str, a: str, b: str, turns: int = 1) -> dict[str, Any]:
    """``conv_metadata`` as Chatbot Arena writes it (``STYLE_CONTROL_ELEMENTS_V1`` of FastChat's
    ``rating_systems.py``: token sums, header, list and bold counts per side)."""
    sa, sb = style_counts(a), style_counts(b)
    return {"sum_user_tokens": len(_TOKEN.findall(prompt)), "turns": turns,
            "sum_assistant_a_tokens": sa["tokens"], "sum_assistant_b_tokens": sb["tokens"],
            "header_count_a": sa["header_count"], "header_count_b": sb["header_count"],
            "list_count_a": sa["list_count"], "list_count_b": sb["list_count"],
            "bold_count_a": sa["bold_count"], "bold_count_b": sb["bold_count"]}


def _is_on(value: Any) -> bool:
    return value is not None and value is not pd.NA and bool(value)


def _side_arm(r: dict[str, Any], side: str) -> str:
    """The attributes switched on for one side (``base`` when none): the "model" of the arm."""
    on = sorted(a for a in EDITORS if _is_on(r.get(f"{side}_{a}")))
    return "+".join(on) if on else "base"


def arena_frame(pairs: pd.DataFrame, models: str = "source") -> pd.DataFrame:
    """Labelled pairs as Chatbot Arena battles, for FastChat's rating tools: side A is the left
    (displayed first) response, ``winner`` is ``model_a``/``model_b``/``tie``/``tie (bothbad)``.
    ``model_a``/``model_b`` name what a rating should rate (``models``): ``"source"`` (default)
    the response's generating model where the pool knows it, else the side's arm (its
    switched-on attributes, ``base`` for none), with the arm appended to a known model when
    attributes were switched on; ``"arm"`` the arm only; ``"response"`` the response copy
    (``response-<id>``, one "model" per text). ``conv_metadata`` carries the style counts
    FastChat's style control reads; ``language`` is the annotator's ``language`` covariate, or
    ``unknown``. Skipped and unlabelled pairs, quality-control items and excluded annotators'
    labels (where those columns exist) are left out."""
    if models not in ARENA_MODELS:
        raise ValueError(f"models must be one of {', '.join(ARENA_MODELS)}; got {models!r}")
    pairs = pairs[pairs["label"].isin(list(ARENA_WINNER))]
    if "qc_kind" in pairs.columns:
        pairs = pairs[pairs["qc_kind"].isna() | pairs["qc_kind"].isin(["regular", "repeat"])]
    if "excluded" in pairs.columns:
        pairs = pairs[~pairs["excluded"].fillna(False).astype(bool)]

    def name(r: dict[str, Any], side: str) -> str:
        if models == "response":
            return f"response-{r[f'{side}_response_id']}"
        arm = _side_arm(r, side)
        source = r.get(f"{side}_source_model")
        if models == "arm" or not isinstance(source, str) or not source:
            return arm
        return source if arm == "base" else f"{source}+{arm}"

    rows = []
    for r in pairs.to_dict("records"):
        covariates = r.get("annotator_covariates")
        try:
            language = (json.loads(covariates) if isinstance(covariates, str) else covariates or {}).get("language")
        except (json.JSONDecodeError, AttributeError):
            language = None
        history = prompt_turns(r["prompt"])  # a multi-turn request keeps its turns, as Arena writes them
        row = {
            "question_id": str(r["prompt_id"]),
            "model_a": name(r, "left"), "model_b": name(r, "right"),
            "winner": ARENA_WINNER[r["label"]], "judge": f"annotator-{r['annotator_id']}",
            "conversation_a": [*history, {"role": "assistant", "content": r["left_text"]}],
            "conversation_b": [*history, {"role": "assistant", "content": r["right_text"]}],
            "turn": sum(t["role"] == "user" for t in history) or 1, "anony": True,
            "language": language if isinstance(language, str) and language else "unknown",
            "conv_metadata": conv_metadata(r["prompt"], r["left_text"], r["right_text"],
                                           sum(t["role"] == "user" for t in history) or 1),
            "tstamp": pd.Timestamp(r["labelled_at"]).timestamp(),
            "served_pair_id": r["served_pair_id"], "task_type": r["task_type"],
            "strength": r["strength"], "rationale": r["rationale"],
            "annotator_group": r["annotator_group"],
            "a_edit_vector": r["left_edit_vector"], "b_edit_vector": r["right_edit_vector"],
            "position_swapped": r["position_swapped"],
            "policy": r["policy"], "policy_version": r["policy_version"], "arm": r["arm"], "family": r["family"],
            "propensity_score": r["propensity_score"], "arm_propensity": r["arm_propensity"],
            "model_version": r["model_version"], "latency_ms": r["latency_ms"],
        }
        for a in sorted(EDITORS):
            row[f"a_{a}"], row[f"b_{a}"] = r[f"left_{a}"], r[f"right_{a}"]
            row[f"a_{a}_assigned"], row[f"b_{a}_assigned"] = r[f"left_{a}_assigned"], r[f"right_{a}_assigned"]
        rows.append(row)
    columns = [
        "question_id", "model_a", "model_b", "winner", "judge", "conversation_a", "conversation_b",
        "turn", "anony", "language", "conv_metadata", "tstamp", "served_pair_id", "task_type", "strength", "rationale",
        "annotator_group", "a_edit_vector", "b_edit_vector", "position_swapped", "policy",
        "policy_version", "arm", "family", "propensity_score", "arm_propensity", "model_version", "latency_ms",
    ] + [f"{s}_{a}" for a in sorted(EDITORS) for s in ("a", "b")] + [
        f"{s}_{a}_assigned" for a in sorted(EDITORS) for s in ("a", "b")]
    df = pd.DataFrame(rows, columns=columns)
    for col in columns[-4 * len(EDITORS):]:
        df[col] = df[col].astype("boolean")
    for col in ("strength", "latency_ms"):
        df[col] = df[col].astype("Int64")
    return df


EFFECT_OUTCOME = {"left": 1.0, "right": 0.0, "tie": 0.5}


def effects_frame(pairs: pd.DataFrame) -> pd.DataFrame:
    """The conjoint long format: one row per shown response of each labelled pair.

    The rows are the pairs the AMCE reads (``acquisition.effects.labelled_pairs``: labelled
    left, right or tie; no quality-control item; no excluded annotator). ``chosen`` is 1 for
    the chosen side, 0 for the other, 0.5 for both sides of a tie. For each attribute ``a``:
    ``a`` is whether this response had it (null where the pair did not randomise it) and
    ``a_propensity`` the probability it had it given that the pair randomised it, the
    marginal propensity an attribute-level estimator divides by. ``a`` is the treatment
    received (read on the text served; null where the attribute does not apply to the
    response or to the other one of its pair, so the rows are the AMCE's pairs);
    ``a_assigned`` is the policy's draw, for intention-to-treat. ``pair_propensity`` is the
    probability of the whole displayed pair (about 1e-6 in a large pool; never a per-attribute
    propensity); ``arm_propensity`` that of the pair's edits and display order."""
    from acquisition.effects import labelled_pairs

    df = labelled_pairs(pairs)
    attributes = sorted(EDITORS)
    rows = []
    for r in df.to_dict("records"):
        marginals = json.loads(r["edit_marginals"]) if isinstance(r.get("edit_marginals"), str) else {}
        y_left = EFFECT_OUTCOME[r["label"]]
        for position, side, y in ((0, "left", y_left), (1, "right", 1.0 - y_left)):
            row = {
                "served_pair_id": r["served_pair_id"], "side": side, "position": position,
                "annotator_id": r["annotator_id"], "annotator_group": r["annotator_group"],
                "objective": r["objective"], "task_type": r["task_type"], "prompt_id": r["prompt_id"],
                "response_id": r[f"{side}_response_id"], "base_response_id": r[f"{side}_base_response_id"],
                "source_model": r[f"{side}_source_model"], "label": r["label"], "chosen": y,
                "policy": r["policy"], "policy_version": r["policy_version"], "arm": r["arm"],
                "arm_propensity": r["arm_propensity"], "pair_propensity": r["propensity_score"],
            }
            for a in attributes:
                flag = r[f"{side}_{a}"]
                other = r[f"{'right' if side == 'left' else 'left'}_{a}"]
                missing = flag is None or pd.isna(flag) or other is None or pd.isna(other)
                on = None if missing else bool(flag)  # both sides in the estimand, or neither
                row[a] = on
                assigned = r.get(f"{side}_{a}_assigned")
                row[f"{a}_assigned"] = None if assigned is None or pd.isna(assigned) else bool(assigned)
                row[f"{a}_propensity"] = marginals.get(a) if on is not None else None
            rows.append(row)
    columns = ["served_pair_id", "side", "position", "annotator_id", "annotator_group", "objective", "task_type",
               "prompt_id", "response_id", "base_response_id", "source_model", "label", "chosen", "policy",
               "policy_version", "arm", "arm_propensity", "pair_propensity",
               *[c for a in attributes for c in (a, f"{a}_assigned", f"{a}_propensity")]]
    out = pd.DataFrame(rows, columns=columns)
    for a in attributes:
        out[a] = out[a].astype("boolean")
        out[f"{a}_assigned"] = out[f"{a}_assigned"].astype("boolean")
        out[f"{a}_propensity"] = out[f"{a}_propensity"].astype("float64")
    out["chosen"] = out["chosen"].astype("float64")
    return out


FRAMES: dict[str, Callable[..., pd.DataFrame]] = {"trl": trl_frame, "trl-conversational": trl_conversational_frame,
                                                  "arena": arena_frame, "effects": effects_frame,
                                                  "pairs": lambda pairs: pairs}  # format -> function of the pairs frame
FORMATS = tuple(FRAMES)


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """Stable dtypes so JSONL and Parquet agree and empty exports still load."""
    for col in df.columns:
        if col.startswith(("left_", "right_", "chosen_", "rejected_")) and col.split("_", 1)[1] in EDITORS:
            df[col] = df[col].astype("boolean")
    for col in ("strength", "latency_ms", "acquisition_score", "study_version"):
        if col in df.columns:
            df[col] = df[col].astype("Float64" if col == "acquisition_score" else "Int64")
    # ids stay integers (nullable) whether or not a row has one: imported preferences have no
    # served pair, annotator or policy version, and a column of them must not turn into doubles
    for col in ("served_pair_id", "annotator_id", "policy_version", "prompt_id", "chosen_response_id",
                "rejected_response_id", "origin_served_pair_id", "seed"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col]).astype("Int64")
    return df
