"""Stopping a study by rule, not only by quota: once every attribute the researcher named is
resolved by its confidence sequence (``acquisition.sequential``: the sequence excludes 0, or lies
inside the region of practical equivalence), or at a maximum number of labels
(``StudyConfig.stop_when_resolved``, ``stop_rope``, ``max_labels``).

The rule is checked off the request path (the worker's poll, the dashboard, ``deconfound study
check``): ``check_stopping`` estimates the named effects and, when the rule is met, records the
stop once, in the meta ``study_stopped`` and the audit log, with the labels, the sequences and the
reason. Serving reads that meta and shows annotators the completion message. The confidence
sequence is valid at any stopping time, so a study stopped this way keeps its 95% guarantee, and
the card says it was stopped by design. Labels that arrive between the rule being met and the
check (at most one poll) are kept and counted."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field

from acquisition.effects import amce
from acquisition.sequential import resolved
from collector.io.frames import pairs_frame
from collector.serving.study import STOPPED_META, StudyConfig, stopped, study_config, study_version
from collector.store import Store


@dataclass
class StopState:
    """Where the study stands against its rule."""

    rule: bool  # a rule is set
    stopped: bool
    reason: str = ""
    labels: int = 0
    resolved: dict[str, str | None] = field(default_factory=dict)  # attribute -> non-zero / negligible / None
    sequences: dict[str, tuple[float, float]] = field(default_factory=dict)
    at: float | None = None
    study_version: int | None = None


def has_rule(config: StudyConfig) -> bool:
    return bool(config.stop_when_resolved) or config.max_labels > 0


def evaluate(store: Store, config: StudyConfig | None = None) -> StopState:
    """The rule against the labels so far (nothing written)."""
    config = config or study_config(store)
    labels = store.label_count()
    state = StopState(rule=has_rule(config), stopped=False, labels=labels)
    if not state.rule:
        return state
    if config.stop_when_resolved:
        table = amce(pairs_frame(store), attributes=list(config.stop_when_resolved))
        for a in config.stop_when_resolved:
            row = table[table["attribute"] == a]
            low, high = (float(row.iloc[0]["cs_low"]), float(row.iloc[0]["cs_high"])) if len(row) else (math.nan,) * 2
            state.sequences[a] = (low, high)
            state.resolved[a] = resolved(low, high, config.stop_rope)
        if all(state.resolved.values()):
            state.stopped = True
            state.reason = "every named attribute resolved by its 95% confidence sequence: " + ", ".join(
                f"{a} {v}" for a, v in state.resolved.items())
    if not state.stopped and config.max_labels and labels >= config.max_labels:
        state.stopped, state.reason = True, f"reached max_labels ({config.max_labels:,} labels)"
    return state


def check_stopping(store: Store) -> StopState:
    """Evaluate the rule and, the first time it is met, record the stop (meta and audit log).
    A study already stopped stays stopped; changing the rule in the study settings reopens it."""
    config, version = study_config(store), study_version(store)
    previous = stopped(store)
    if previous is not None and previous.get("study_version") == version:
        return StopState(**{**previous, "sequences": {k: tuple(v) for k, v in previous["sequences"].items()}})
    state = evaluate(store, config)
    state.study_version = version
    with store.transaction():
        if state.stopped:
            state.at = time.time()
            record = asdict(state)
            store.set_meta(STOPPED_META, json.dumps(record))
            store.audit("stopping rule", "study stopped by rule", {k: record[k] for k in (
                "reason", "labels", "resolved", "sequences", "study_version")})
        elif previous is not None:  # the rule was changed since the stop: the study runs again
            store.set_meta(STOPPED_META, "")
    return state
