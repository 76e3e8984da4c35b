"""Plain functions behind the researcher page (no Streamlit here)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from acquisition import EXAMPLES
from acquisition.core.config import loads_toml, to_dict
from acquisition.core.errors import ConfigError
from acquisition.core.pool import texts_of
from acquisition.core.records import PolicySpec
from acquisition.policies import AnnotatorContext, build_policy, parse_policy_document, policy_needs
from collector.serving.service import Collector, build_failure, policy_inputs
from collector.store import Store


def example_policies() -> dict[str, str]:
    """Example policy files by policy name."""
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.toml"))}


def upload_text(data: bytes, name: str, limit: int = 1_000_000) -> str:
    """An uploaded policy file's text: UTF-8 and small, else one sentence naming the file."""
    if len(data) > limit:
        raise ConfigError(f"{name}: larger than {limit:,} bytes; not a policy file.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8.") from None


def parse_policy_text(text: str, source: str = "policy") -> tuple[str, Any]:
    """Validate a policy file's text; errors name the field."""
    return parse_policy_document(loads_toml(text, source), source)


def preview_policy(store: Store, text: str, n: int = 8, seed: int = 0, group: str = "default") -> pd.DataFrame:
    """Pairs the policy would serve to an annotator of ``group`` now (nothing is written): the
    edits each side gets and the propensities, given the labels collected so far."""
    name, config = parse_policy_text(text)
    pool = store.pool_snapshot()
    needed = policy_needs(name, config)
    policy = build_policy(name, config, pool, **policy_inputs(store, needed, store.get_meta("model_version")))
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        p = policy.propose(AnnotatorContext(0, group), rng)

        def edits(side: Any) -> str:
            return ", ".join(sorted(a for a, e in side.edit_vector.items() if e["on"])) or "none"

        rows.append({
            "prompt": pool.prompt(p.prompt_id).text[:80], "left response": p.left.base_response_id,
            "left edits": edits(p.left), "right response": p.right.base_response_id,
            "right edits": edits(p.right), "arm": p.arm,
            "propensity_score": p.propensity_score, "arm_propensity": p.arm_propensity,
        })
    return pd.DataFrame(rows)


def activate_policy_text(collector: Collector, text: str) -> PolicySpec:
    """Validate, build on the current pool and only then activate (``Collector.activate_policy``);
    the next served pair uses it, recorded with the new version."""
    name, config = parse_policy_text(text)
    if not collector.store.pool_snapshot(lazy_texts=True).servable:
        raise ConfigError("The pool has no prompt with two responses; load a pool before activating.")
    return collector.activate_policy(name, to_dict(config))


def policy_build_message(store: Store) -> str | None:
    """What the Researcher and Dashboard pages say when the active policy could not be built:
    which version, the error, and which version serves meanwhile (or that nothing does)."""
    failure = build_failure(store)
    if failure is None:
        return None
    serving = failure.get("serving")
    meanwhile = (f"Pairs are still served, and logged, by version {serving}, built before it."
                 if serving is not None and serving != failure["version"] else
                 "No pair can be served until it builds; activate a policy that builds on this pool.")
    return (f"Policy {failure['policy']} version {failure['version']} failed to build: {failure['error']}. "
            f"{meanwhile} The server tries again every few seconds while annotators are served.")


def active_policy_summary(store: Store) -> dict[str, Any]:
    row = store.active_policy()
    if row is None:
        return {"policy": None}
    return {"policy": row["name"], "version": row["version"], "config": json.dumps(row["config"], indent=2)}


def balance_tables(store: Store) -> dict[str, pd.DataFrame] | None:
    """The researcher page's balance tables (chosen vs rejected, left vs right, arms vs the
    reference), or ``None`` before any label has a winner."""
    from acquisition.balance import arm_balance, balance_report, chosen_rejected_smd
    from collector.io.frames import pairs_frame, trl_frame

    trl = trl_frame(pairs_frame(store))
    if not len(trl):
        return None
    pairs = pairs_frame(store)
    return {
        "chosen_rejected": chosen_rejected_smd(trl),
        "left_right": balance_report(pairs).pivot(index="attribute", columns="stratum", values="smd"),
        "arms": arm_balance(pairs, by=("annotator_group", "task_type")),
    }


def parse_group_objectives(text: str) -> dict[str, str]:
    """``group = objective`` lines (blank lines and ``#`` comments skipped) -> a table; a line
    without ``=`` is one ``ConfigError`` naming its number."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        group, sep, objective = line.partition("=")
        if not sep or not group.strip():
            raise ConfigError(f"group objectives, line {number}: expected `group = objective`, got {line.strip()!r}.")
        out[group.strip()] = objective.strip()
    return out


def parse_objective_lines(text: str) -> tuple[list[str], list[float]]:
    """Objectives to randomise, one per line, each optionally ``probability | text``; returns
    ``(objectives, probabilities)`` with no probabilities when none was given (equal)."""
    objectives: list[str] = []
    probabilities: list[float] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        head, sep, rest = line.partition("|")
        if sep:
            try:
                probabilities.append(float(head))
            except ValueError:
                raise ConfigError(f"objectives, line {number}: {head.strip()!r} is not a probability "
                                  "(write `0.3 | text`).") from None
            objectives.append(rest.strip())
        else:
            objectives.append(line.strip())
    if probabilities and len(probabilities) != len(objectives):
        raise ConfigError("objectives: give a probability on every line or on none.")
    return objectives, probabilities


def embedding_status(store: Store, stale_after: float = 120.0) -> tuple[float, str] | None:
    """The worker's embedding progress while it runs, as ``(fraction, "embedding 3,200/124,780
    texts (3%), 41/s, ETA 49m30s")``; ``None`` when nothing is being embedded (or the last report
    is older than ``stale_after`` seconds: the worker stopped)."""
    import time

    from models.embeddings import progress_line

    raw = store.get_meta("embedding_progress")
    if not raw:
        return None
    try:
        state = json.loads(raw)
        done, total = int(state["done"]), int(state["total"])
        elapsed, updated = float(state["elapsed"]), float(state["updated_at"])
    except (ValueError, KeyError, TypeError):
        return None
    if done >= total or time.time() - updated > stale_after or total <= 0:
        return None
    return done / total, progress_line(done, total, elapsed)


def editor_audit_table(store: Store, limit: int = 300, meaning: bool = False, seed: int = 0) -> pd.DataFrame:
    """The editor audit (``acquisition.editors.audit``) on a seeded sample of the pool's base
    responses, one row per style editor; ``meaning`` adds the embedding cosine (slower)."""
    import random

    from acquisition.editors.audit import audit_editors

    if limit < 1:
        raise ConfigError(f"Audit sample: must be a positive number of responses; got {limit}.")
    pool = store.pool_snapshot(lazy_texts=True)
    ids = [int(r) for r in pool.arrays.response_ids]
    if not ids:
        raise ConfigError("The pool has no responses to audit; load a pool first.")
    sample = random.Random(seed).sample(ids, min(limit, len(ids)))
    replies = texts_of(pool.response_text, sample)
    asked_of = {rid: pool.prompt_of(rid) for rid in sample}
    requests = texts_of(pool.prompt_text, sorted(set(asked_of.values())))
    texts = [replies[rid] for rid in sample]
    prompts = [requests.get(asked_of[rid]) for rid in sample]
    embed = None
    if meaning:
        from models.embeddings import Embedder

        embed = Embedder(max_length=256).embed
    rows = [r.as_row() for r in audit_editors(texts, embed=embed, seed=seed, prompts=prompts)]
    columns = ["editor", "passes", "applies", "added", "removed", "check_pass", "top_share", "top_string",
               "distinct_per_100", "artefacts", "meaning_cosine", "natural", "detect_auc"]
    return pd.DataFrame(rows)[columns]


def plan_table(store: Store, effect: float, budget: int, power: float = 0.8) -> pd.DataFrame:
    """``deconfound plan`` for the Researcher page: per attribute, the labels ``effect`` needs and
    the effect ``budget`` detects, with the inputs and where they came from."""
    from collector.jobs.plan import plan

    table = plan(store, effect=effect, budget=budget, power=power)
    keep = ["attribute", "p_on", "randomised_share", "icc", "annotators", "labels_needed", "detectable_effect",
            "note", "p_on_source", "randomised_share_source", "icc_source"]
    return table[[c for c in keep if c in table.columns]]


def stopping_notice(store: Store) -> str | None:
    """The study's stopping rule and where it stands, for the dashboard (``None`` without a rule)."""
    from collector.serving.study import stopped, study_config, study_version

    config = study_config(store)
    if not (config.stop_when_resolved or config.max_labels):
        return None
    parts = []
    if config.stop_when_resolved:
        parts.append("every one of " + ", ".join(config.stop_when_resolved) + " resolved by its confidence sequence"
                     + (f" (or inside +-{config.stop_rope:g})" if config.stop_rope else ""))
    if config.max_labels:
        parts.append(f"{config.max_labels:,} labels")
    record = stopped(store)
    if record is not None and record.get("study_version") == study_version(store):
        return (f"Stopping rule: {' or '.join(parts)}. The study stopped by its rule at {record['labels']:,} labels "
                f"({record['reason']}); annotators now see the completion message. Changing the rule in the study "
                "settings reopens it.")
    return (f"Stopping rule: {' or '.join(parts)}. Not met yet: the worker checks it every 50 labels "
            "(`deconfound study check` checks it now).")
