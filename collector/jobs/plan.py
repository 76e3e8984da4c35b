"""``deconfound plan``: the labels each attribute's AMCE needs, or the effect a budget detects, for
the active (or a proposed) policy, with the inputs read from the study so far where there is
one (``acquisition.planning``). Every row says where each input came from."""

from __future__ import annotations

from typing import Any

import pandas as pd

from acquisition.core.errors import ConfigError
from acquisition.effects import amce, labelled_pairs, randomised_attributes
from acquisition.planning import Design, detectable_effect, icc_from_effects, labels_needed
from acquisition.policies import POLICIES, parse_policy_config
from collector.io.frames import pairs_frame
from collector.serving.qc_settings import qc_config
from collector.store import Store

DEFAULT_TIES, DEFAULT_DROPS = 0.1, 0.05


def _marginals(name: str, config: dict[str, Any]) -> dict[str, float] | None:
    cls = POLICIES.get(name)
    if cls is None:
        raise ConfigError(f"policy {name!r}: unknown; known: {', '.join(sorted(POLICIES))}.")
    return cls.static_marginals(parse_policy_config(name, dict(config)))


MIN_ANNOTATORS_FOR_ICC = 20  # fewer clusters give an ICC too noisy to plan by


POOL_SAMPLE = 300  # base responses read to estimate where an editor applies


def _share(store: Store, done: pd.DataFrame, attribute: str) -> tuple[float, str]:
    """The share of labelled pairs that enter the attribute's estimate: it is randomised, and it
    applies to both responses (a list needs three sentences). From the study so far, else from a
    sample of the pool's base responses (the editor's ``applies``, squared for the two sides)."""
    if len(done) >= 30 and f"left_{attribute}" in done.columns:
        both = done[f"left_{attribute}"].notna() & done[f"right_{attribute}"].notna()
        if both.any():
            return float(both.mean()), "the study so far"
    from acquisition.editors import EDITORS, get_editor

    if attribute not in EDITORS:
        raise ConfigError(f"plan: {attribute!r} is not an attribute an editor switches; known: "
                          f"{', '.join(sorted(EDITORS))}.")
    texts = [t for (t,) in store._tuples(  # a fixed, spread sample: ids in a scrambled order
        "SELECT text FROM responses WHERE parent_response_id IS NULL ORDER BY (id * 2654435761) % 4294967296 "
        "LIMIT ?", [POOL_SAMPLE])]
    if not texts:
        return 1.0, "assumed 1 (no pool yet)"
    editor = get_editor(attribute)
    applies = sum(editor.applies(t) for t in texts) / len(texts)
    if applies == 0:
        raise ConfigError(f"plan: {attribute!r} applies to none of {len(texts)} responses of the pool: it cannot "
                          "be randomised here.")
    return applies ** 2, f"the pool (applies to {applies:.0%} of {len(texts)} responses; both sides must)"


def _icc_so_far(seen: pd.DataFrame) -> tuple[float, float, str]:
    """``(icc, labels per annotator, source)``: the median over attributes of the ICC implied by
    each one's pair- and annotator-clustered standard errors, where at least 20 annotators
    labelled; else 0, said so."""
    usable = seen[(seen["n_annotators"] >= MIN_ANNOTATORS_FOR_ICC) & seen["se"].gt(0)] if len(seen) else seen
    if not len(usable):
        return 0.0, 100.0, f"default 0 (fewer than {MIN_ANNOTATORS_FOR_ICC} annotators so far; --icc to state one)"
    m = usable["n_labels"] / usable["n_annotators"]
    iccs = [icc_from_effects(se, sa, k) for se, sa, k in zip(usable["se"], usable["se_annotator"], m)]
    return float(pd.Series(iccs).median()), float(m.median()), f"the study so far (median of {len(iccs)} attributes)"


def plan(store: Store, effect: float | None = None, budget: int | None = None, power: float = 0.8,
         alpha: float = 0.05, attributes: list[str] | None = None, policy: tuple[str, dict[str, Any]] | None = None,
         icc: float | None = None, annotators: int | None = None, tie_rate: float | None = None,
         drop_rate: float | None = None, p_on: float | None = None, item_icc: float | None = None) -> pd.DataFrame:
    """One row per attribute: the design's inputs (and their sources), the labels for ``effect``
    at ``power`` and the smallest effect ``budget`` labels detect."""
    if effect is None and budget is None:
        raise ConfigError("plan: give --effect (labels needed) or --budget (the effect it detects), or both.")
    if policy is None:
        spec = store.active_policy()
        if spec is None:
            raise ConfigError("plan: no active policy; give --policy FILE.")
        policy = (spec.name, dict(spec.config))
    static = _marginals(*policy)
    pairs = pairs_frame(store)
    done = labelled_pairs(pairs)
    seen = amce(pairs) if len(done) else pd.DataFrame()
    sources: dict[str, str] = {}
    if tie_rate is None:
        answered = pairs[pairs["status"] == "labelled"]
        tie_rate = float((answered["label"] == "tie").mean()) if len(answered) >= 30 else DEFAULT_TIES
        sources["tie_rate"] = "the study so far" if len(answered) >= 30 else "default"
    if drop_rate is None:
        finished = pairs[pairs["status"].isin(["labelled", "skipped"])]
        drop_rate = 1 - len(done) / len(finished) if len(finished) >= 30 else DEFAULT_DROPS
        sources["drop_rate"] = "the study so far" if len(finished) >= 30 else "default"
    overlap = qc_config(store).overlap
    names = attributes or (sorted(static) if static else randomised_attributes(done) if len(done) else [])
    if not names:
        raise ConfigError(f"plan: policy {policy[0]!r} randomises no attribute its config names, and no pair is "
                          "labelled yet; give --attributes and --p-on.")
    seen_icc = _icc_so_far(seen)
    if annotators is None and len(done):  # the study goes on with the crowd it has
        annotators, sources["annotators"] = int(done["annotator_id"].nunique()), "the study so far"
    rows = []
    for a in names:
        row: dict[str, Any] = {"attribute": a}
        share, row["randomised_share_source"] = _share(store, done, a)
        if p_on is not None:
            p, row["p_on_source"] = p_on, "stated"
        elif static and a in static:
            p, row["p_on_source"] = static[a], f"policy {policy[0]}"
        elif len(done) and f"left_{a}" in done.columns and done[f"left_{a}"].notna().any():
            flags = pd.concat([done[f"left_{a}"], done[f"right_{a}"]]).dropna().astype(bool)
            p, row["p_on_source"] = float(flags.mean()), "the study so far"
        else:
            raise ConfigError(f"plan: the design's probability of {a!r} does not follow from policy "
                              f"{policy[0]!r} and no labelled pair randomised it; give --p-on.")
        if not 0 < p < 1:
            raise ConfigError(f"plan: {a!r} is on with probability {p:g}: never both on and off, so no effect "
                              "can be estimated.")
        row_icc, m = icc, 100.0
        if row_icc is None:
            row_icc, m, row["icc_source"] = seen_icc
        else:
            row["icc_source"] = "stated"
        design = Design(p_on=p, tie_rate=tie_rate, drop_rate=drop_rate, icc=row_icc, labels_per_annotator=m,
                        overlap=overlap, item_icc=item_icc or 0.0, randomised_share=share)
        row.update(p_on=p, randomised_share=share, tie_rate=tie_rate, drop_rate=drop_rate, icc=row_icc,
                   overlap=overlap, item_icc=item_icc or 0.0,
                   item_icc_source="stated" if item_icc is not None else (
                       "default 0 (repeats count as independent labels)" if overlap > 1 else "no overlap"),
                   annotators=annotators, power=power, alpha=alpha)
        if effect is not None:
            row["effect"] = effect
            try:
                row["labels_needed"] = labels_needed(effect, design, power, alpha, annotators=annotators)
            except ValueError as exc:  # out of reach with this crowd: said on its row, the others stand
                row["labels_needed"], row["note"] = None, f"{exc}."
        if budget is not None:
            if annotators is not None:
                design = Design(**{**design.__dict__, "labels_per_annotator": max(1.0, budget / annotators)})
            row["budget"] = budget
            row["detectable_effect"] = detectable_effect(budget, design, power, alpha)
        rows.append(row)
    out = pd.DataFrame(rows)
    for name, source in sources.items():
        out[f"{name}_source"] = source
    return out
