"""Serving pairs and taking labels: the functions the annotator page, the CLI and the
simulated annotators all call.

``Collector`` holds one ``Store`` and caches the active policy, built over a pool snapshot with
the inputs it declared; it is rebuilt only when one of those moves, so producing the next pair
is a couple of indexed queries plus the policy's own work.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from acquisition.core.errors import ConfigError, DeconfoundError, LabelError, StudyComplete
from acquisition.core.pool import PoolSnapshot
from acquisition.core.records import PolicySpec
from acquisition.editors import edit_and_receive, with_treatment
from acquisition.policies import AnnotatorContext, Policy, Proposal, build_policy, parse_policy_config, policy_needs
from acquisition.rewriter import SOURCE as REWRITE_SOURCE
from acquisition.rewriter import RewritePair, rewrite_pairs
from collector.serving import snapshots
from collector.serving.memory import release_free_memory
from collector.serving.quality_control import QualityControl
from collector.serving.study import (
    MAX_SUSPICION_NOTE,
    SUSPICION_ANSWERS,
    StudyConfig,
    objective_draw,
    stopped,
    study_config,
    study_version,
)
from collector.store import DEFAULT_LEASE_SECONDS, SideRecord, Store

MODEL_INPUTS = frozenset({"acquisition_scores", "design_scores"})  # inputs read from the live checkpoint
REBUILD_RETRY_SECONDS = 10.0  # a failed background build is tried again after this long, not on every request
# annotator requests run at once (``Collector``'s concurrency): one in SQLite while one runs Python;
# bench_rebuild at 50 annotators: 1 -> p50 3.7 / p95 33 ms, 2 -> 5.7 / 21.8 ms, 3 -> 7.1 / 22.9 ms, unbounded -> 144 / 180 ms
DEFAULT_CONCURRENCY = 2
BUILD_ERROR_META = "policy_build_error"  # JSON of the last failed build of the active policy ("" once one works)
log = logging.getLogger("deconfound.serving")


def build_failure(store: Store) -> dict[str, Any] | None:
    """The active policy's last failed build, as ``Collector`` recorded it, or ``None``: only a
    failure of the version active now counts (a later activation supersedes it)."""
    stored = store.get_meta(BUILD_ERROR_META)
    if not stored:
        return None
    record = json.loads(stored)
    active = store.active_policy()
    return record if active is not None and record.get("version") == active.version else None


def load_rewrite_pairs(store: Store) -> list[RewritePair]:
    """Every complete rewrite pair in the database whose two texts differ (``rewrite_pairs``)."""
    return rewrite_pairs(store.variants(REWRITE_SOURCE))


def policy_inputs(store: Store, needed: frozenset[str], model_version: str | None) -> dict[str, Any]:
    """What a policy declared it needs (``Policy.needs``), from the database and the checkpoint
    of ``model_version``; nothing else is read."""
    checkpoints = store.checkpoints() if store.path != ":memory:" else None
    providers: dict[str, Callable[[], Any]] = {
        "acquisition_scores": lambda: checkpoints.acquisition_scores(model_version) if checkpoints else None,
        "design_scores": lambda: checkpoints.design_scores(model_version) if checkpoints else None,
        "rewrite_pairs": lambda: load_rewrite_pairs(store),
        "served_count": lambda: store.served_count,
        "label_cells": lambda: store.labelled_cells_since,
        "served_pairs": lambda: store.served_base_pairs_since,
    }
    return {name: providers[name]() for name in needed}


def off_topic_donor(pool: PoolSnapshot, prompt_id: int) -> Callable[[int], str]:
    """``seed -> text`` of a base response written for another prompt: what the ``off_topic``
    editor swaps in, drawn from the pool by the edit's seed."""
    n_others = pool.n_responses - len(pool.prompt(prompt_id).response_ids)
    return lambda seed: pool.response_text[pool.other_response(prompt_id, seed % n_others)] if n_others else ""


class StoredLabel(dict):
    """The stored label row, and whether this submission created it (``False``: a repeat)."""

    def __init__(self, row: dict[str, Any], created: bool) -> None:
        super().__init__(row)
        self.created = created


@dataclass(frozen=True)
class PairView:
    """What the annotator page shows for one served pair."""

    served_pair_id: int
    prompt: str
    task_type: str
    left_text: str
    right_text: str
    objective: str | None = None  # the study's objective text it is shown with
    turns: tuple[dict[str, str], ...] = ()  # a multi-turn request's turns (empty: one user turn)


class Collector:
    """Serves pairs under the active policy and records labels.

    Args:
        store: the database.
        seed: seeds the generator that draws each served pair's own seed (``None``: entropy).
        lease_seconds: how long a served pair stays reserved for its annotator.
        background_rebuild: when the pool, the policy or the live model moves, keep serving the
            current policy while the new one is built in a thread, and swap it in when whole (the
            app: no request waits on a rebuild; every served pair records the policy version and
            model that actually served it). Off: the next request rebuilds (tests, scripts).
        concurrency: how many annotator requests (next pair, submit, skip) run at once; the rest
            wait their turn. Python runs one thread at a time (the GIL), so threads beyond the
            ones that can overlap (one in SQLite, one in Python) only take the GIL from the one
            holding the write lock, each time its SQLite call returns, for up to a switch
            interval: with 50 annotators every 0.2 s the write lock stayed held for a p95 of
            12 ms instead of 0.75 ms and the next pair's p50 went from 6 to 142 ms
            (``bench_rebuild``; docs/benchmarks.md).
    """

    def __init__(self, store: Store, seed: int | None = None,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS, background_rebuild: bool = False,
                 concurrency: int = DEFAULT_CONCURRENCY) -> None:
        if concurrency < 1:
            raise ConfigError(f"Collector: concurrency {concurrency}; at least 1.")
        self.store = store
        self._admission = threading.BoundedSemaphore(concurrency)
        self.lease_seconds = lease_seconds
        self.background_rebuild = background_rebuild
        self._building: tuple[Any, ...] | None = None
        self._rebuilder: threading.Thread | None = None  # the build in flight off the request path
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._policy_key: tuple[Any, ...] | None = None
        self._policy: Policy | None = None
        self._policy_spec: PolicySpec | None = None
        self._snapshot: PoolSnapshot | None = None
        self._needs: tuple[tuple[int, int], Any, frozenset[str]] | None = None
        self._failed: tuple[tuple[Any, ...], float] | None = None  # a key whose build failed, and when to retry it
        self.quality_control = QualityControl(store)  # gold, attention checks, overlap repeats
        self._next_sweep = 0.0

    # ------------------------------------------------------------------ policy
    def active_policy(self) -> tuple[Policy, PolicySpec]:
        """The active policy instance and its stored version, rebuilt when the pool, the policy or
        an input it declared (the live model's scores, the stored rewrites) moves."""
        spec = self.store.active_policy()
        if spec is None:
            raise ConfigError(
                "No active policy: run `python -m collector init` or `policy apply FILE` first."
            )
        if self._needs is None or self._needs[0] != spec.key:  # the config is parsed once per version
            config = parse_policy_config(spec.name, dict(spec.config))
            self._needs = (spec.key, config, policy_needs(spec.name, config))
        config, needed = self._needs[1], self._needs[2]
        model_version = self.store.get_meta("model_version") if needed & MODEL_INPUTS else None
        rewrite_version = self.store.get_meta("rewrite_version") if "rewrite_pairs" in needed else None
        qc = self.quality_control.config()[0]
        flags = qc.flags_texts  # the snapshot must flag the texts an attention check edits
        key = (self.store.pool_version, spec.version, model_version, rewrite_version, flags)
        with self._lock:
            if key == self._policy_key or (self._policy is not None and self.background_rebuild):
                retry = self._failed is None or self._failed[0] != key or time.monotonic() >= self._failed[1]
                if key != self._policy_key and self._building is None and retry:
                    # serve the current state while the new one is built, one build at a time: a
                    # key that moves meanwhile is built by the first request after this one ends
                    self._building = key
                    self._rebuilder = threading.Thread(target=self._rebuild, args=(key, spec, config, needed,
                                                                                 model_version),
                                                       name="deconfound-policy-rebuild", daemon=True)
                    self._rebuilder.start()
                return self._policy, self._policy_spec  # type: ignore[return-value]
        try:  # the first build, or rebuilds on request
            policy = self._build(spec, config, needed, model_version, flags=flags)
        except Exception as exc:
            self._build_failed(spec, exc)
            raise
        self._build_succeeded()
        with self._lock:
            # a large pool read here has no attention-check flags: the next request has them
            # built by the builder process, off the request path
            unflagged = flags and self.background_rebuild and not self._flagged(policy.pool)
            self._policy_key = (*key[:-1], "unflagged") if unflagged else key
            self._policy, self._policy_spec = policy, spec
            return policy, spec

    def activate_policy(self, name: str, config: dict[str, Any]) -> PolicySpec:
        """Build the policy on the current pool with the inputs it declares and, only if that
        works, store it as the next version and make it active: a policy that cannot be built
        is refused before anything is written (``ConfigError`` naming why)."""
        parsed = parse_policy_config(name, config, f"policy {name!r}")
        needed = policy_needs(name, parsed)
        model_version = self.store.get_meta("model_version") if needed & MODEL_INPUTS else None
        try:
            build_policy(name, parsed, self._pool_snapshot(off_path=True),
                         **policy_inputs(self.store, needed, model_version))
        except DeconfoundError as exc:
            raise ConfigError(f"policy {name!r} cannot be built on this pool, so it was not activated: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a policy's own bug, named for the researcher
            raise ConfigError(f"policy {name!r} cannot be built on this pool, so it was not activated: "
                              f"{type(exc).__name__}: {exc}") from None
        return self.store.activate_policy(name, config)

    def build_error(self) -> dict[str, Any] | None:
        """The last failed build of the active policy (``{"policy", "version", "error", "at"}``)
        while it lasts: pairs are still served by the policy built before it, or not at all."""
        return build_failure(self.store)

    def _build_failed(self, spec: PolicySpec, exc: BaseException) -> None:
        serving = self._policy_spec.version if self.background_rebuild and self._policy_spec else None
        log.error("building policy %s version %s failed; %s", spec.name, spec.version,
                  f"version {serving} keeps serving" if serving is not None else "no pair can be served",
                  exc_info=exc)
        record = {"policy": spec.name, "version": spec.version, "error": f"{type(exc).__name__}: {exc}",
                  "at": time.time(), "serving": serving}
        try:
            self.store.set_meta(BUILD_ERROR_META, json.dumps(record))
        except DeconfoundError:  # a read-only database: the log line above is what remains
            log.error("could not record the failed build in %s", self.store.path)

    def _build_succeeded(self) -> None:
        if self.store.get_meta(BUILD_ERROR_META):
            try:
                self.store.set_meta(BUILD_ERROR_META, "")
            except DeconfoundError:
                pass  # read-only: nothing was recorded there either

    @staticmethod
    def _flagged(pool: PoolSnapshot) -> bool:
        """Whether ``drop_answer`` attention checks can be drawn from ``pool`` without reading
        its texts on the request path (flags built, or a pool small enough to flag at once)."""
        return pool.arrays.droppable is not None or pool.n_responses < snapshots.process_threshold()

    def _build(self, spec: PolicySpec, config: Any, needed: frozenset[str], model_version: str | None,
               off_path: bool = False, flags: bool = False) -> Policy:
        return build_policy(spec.name, config, self._pool_snapshot(off_path, flags),
                            **policy_inputs(self.store, needed, model_version))

    def _pool_snapshot(self, off_path: bool, flags: bool = False) -> PoolSnapshot:
        """The snapshot of the current pool version, ids only (texts are read on demand).

        Kept while the pool does not move (a new model or policy reuses it). A new version
        comes from the columns a builder saved for it, or, off the request path and for a large
        pool, from a builder process started now (``collector.serving.snapshots``); else it is
        read here, only the rows added since the last one."""
        version = self.store.pool_version
        with self._lock:
            current = self._snapshot
        if current is not None and current.version == version and (not flags or self._flagged(current)):
            return current
        arrays = None
        if self.store.path != ":memory:":
            arrays = snapshots.load_saved(self.store.path, version)
            if arrays is not None and flags and arrays.droppable is None:
                arrays = None  # saved before attention checks were on: the builder flags them now
            known = current.n_responses if current is not None else 0
            if arrays is None and off_path and known >= snapshots.process_threshold():
                arrays = snapshots.build_in_process(self.store.path)
        if arrays is None or arrays.version != version:
            arrays = self.store.pool_arrays(previous=current.arrays if current is not None else None)
            if self.store.path != ":memory:" and len(arrays.response_ids) >= snapshots.process_threshold():
                snapshots.save(self.store.path, arrays)  # the next server start maps them
        snapshot = self.store.pool_snapshot(lazy_texts=True, arrays=arrays)
        with self._lock:
            if self._snapshot is None or self._snapshot.version <= snapshot.version:
                self._snapshot = snapshot  # the flagged one replaces an unflagged one of its version
        return snapshot

    def wait_for_rebuild(self, timeout: float = 60.0) -> None:
        """Wait for a policy build in flight off the request path: before the store closes,
        else the build fails on a closed database (and says so in the log)."""
        if self._rebuilder is not None:
            self._rebuilder.join(timeout)

    def _rebuild(self, key: tuple[Any, ...], spec: PolicySpec, config: Any, needed: frozenset[str],
                 model_version: str | None) -> None:
        """Build the policy for ``key`` off the request path and swap it in at once. On failure
        the previous policy keeps serving (every pair it serves records its own version), the
        failure is logged and recorded for the Researcher and Dashboard pages
        (``build_error``), and a request after ``REBUILD_RETRY_SECONDS`` tries again."""
        try:
            policy = self._build(spec, config, needed, model_version, off_path=True, flags=bool(key[-1]))
        except Exception as exc:  # noqa: BLE001 - logged and shown on the pages, never dropped
            self._build_failed(spec, exc)
            with self._lock:
                self._building = None
                self._failed = (key, time.monotonic() + REBUILD_RETRY_SECONDS)
            return
        self._build_succeeded()
        with self._lock:
            self._policy, self._policy_key, self._policy_spec = policy, key, spec
            self._building = None
        release_free_memory()  # the old policy's arrays go back to the system, not to malloc's free lists

    # ------------------------------------------------------------------ annotator actions
    def login(self, token: str) -> dict[str, Any]:
        return self.store.annotator_by_token(token)

    def next_pair(self, annotator_id: int) -> PairView:
        """The annotator's open pair if they have one, else a new pair from the active policy."""
        with self._admission:
            return self._next_pair(annotator_id)

    def _next_pair(self, annotator_id: int) -> PairView:
        study = self.study()  # read once per request
        config = study[0]
        if config.quota and self.progress(annotator_id) >= config.quota:
            raise StudyComplete(config.completion_message, config.completion_code, config.completion_url)
        if config.stop_when_resolved or config.max_labels:  # stopped by its rule (serving.stopping)
            record = stopped(self.store)
            if record is not None and record.get("study_version") == study[1]:
                raise StudyComplete(config.completion_message, config.completion_code, config.completion_url)
        pair = self.store.open_served_pair(annotator_id)
        if pair is None:
            self.release_expired_leases()
            pair = self._serve_new(annotator_id, study)
        return self.view(pair)

    def release_expired_leases(self, now: float | None = None) -> int:
        """Release pairs whose lease ran out more than one lease ago (annotators who left), at
        most once per lease period; returns how many."""
        now = time.time() if now is None else now
        with self._lock:
            if now < self._next_sweep:
                return 0
            self._next_sweep = now + self.lease_seconds
        return self.store.release_expired_leases(now - self.lease_seconds)

    def study(self) -> tuple[StudyConfig, int]:
        """The study settings and their version (``collector.serving.study``)."""
        return study_config(self.store), study_version(self.store)

    def _serve_new(self, annotator_id: int, study: tuple[StudyConfig, int]) -> dict[str, Any]:
        """Draw and record a new pair: the study's objective draw, then quality control's, then
        the policy's proposal; each is a validated draw with its exact probability
        (``acquisition.core.records.validate_draw``), recorded by ``Store.record_served_pair``."""
        config, version = study
        annotator = self.store.annotator(annotator_id)
        objective_seed = 0
        if config.randomise_objective == "pair":  # no extra draw otherwise: seeds replay as before
            with self._lock:
                objective_seed = int(self._rng.integers(2**31))
        objective = objective_draw(config, version, annotator, objective_seed)
        policy, spec = self.active_policy()
        if self.quality_control.config()[0].active:  # no extra draw when QC is off: seeds replay as before
            with self._lock:
                qc_seed = int(self._rng.integers(2**31))
            qc_pair = self.quality_control.serve(annotator, qc_seed, self.lease_seconds, policy.pool,
                                                 objective=objective, study_version=version)
            if qc_pair is not None:
                return qc_pair
        with self._lock:  # one proposal at a time: history read by prepare() stays put until drawn
            seed = int(self._rng.integers(2**31))
            policy.prepare()
            proposal: Proposal = policy.propose(
                AnnotatorContext(annotator["id"], annotator["group_name"]), np.random.default_rng(seed)
            )
        if proposal.model_version is None:
            proposal = replace(proposal, model_version=self.store.get_meta("model_version"))
        sides = []
        request: str | None = None  # the prompt's text, read once for the edits that depend on it
        for side in (proposal.left, proposal.right):
            if side.response_id is not None:  # pre-generated (an LLM rewrite): served as stored
                stored = self.store.variant(side.response_id)
                check = stored["manipulation_check"]
                received = {a: {"applies": True, "realised": bool(e.get("on")) == check.get(a, True)}
                            for a, e in side.edit_vector.items()}  # the rewrite's check, read when it was made
                sides.append(SideRecord(side.base_response_id, with_treatment(side.edit_vector, received),
                                        stored["text"], check, side.response_id))
                continue
            base_text = policy.pool.response_text[side.base_response_id]
            if request is None and side.edit_vector:
                texts = policy.pool.prompt_text
                request = texts[proposal.prompt_id] if proposal.prompt_id in texts else ""
            # an editor that swaps in another prompt's answer (``takes_donor``) reads it from the pool
            text, check, received = edit_and_receive(base_text, side.edit_vector, prompt=request,
                                                     donor=off_topic_donor(policy.pool, proposal.prompt_id))
            sides.append(SideRecord(side.base_response_id, with_treatment(side.edit_vector, received), text, check))
        return self.store.record_served_pair(
            annotator, proposal, sides[0], sides[1], policy=spec, seed=seed, lease_seconds=self.lease_seconds,
            objective=objective, study_version=version,
        )

    def view(self, pair: dict[str, Any]) -> PairView:
        prompt = self.store.prompt(pair["prompt_id"])
        return PairView(
            served_pair_id=pair["id"], prompt=prompt["text"], task_type=prompt["task_type"],
            left_text=self.store.response(pair["left_response_id"])["text"],
            right_text=self.store.response(pair["right_response_id"])["text"],
            objective=pair.get("objective"),
            turns=prompt["turns"],
        )

    def submit(self, annotator_id: int, served_pair_id: int, choice: str,
               strength: int | None = None, rationale: str | None = None, *,
               shown_at: float | None = None, answered_at: float | None = None,
               judgement: dict[str, Any] | None = None) -> "StoredLabel":
        """Record a label on the served pair it answers: the one way an answer is stored, for the
        annotator page, the API, simulated annotators and model judges alike. A repeated
        submission returns the first label unchanged (``created`` False). Raises
        ``StalePairError`` (nothing written) when that pair is no longer the annotator's open
        pair, ``LabelError`` for an invalid answer."""
        with self._admission:
            label, created = self.store.submit_label(annotator_id, served_pair_id, choice, strength, rationale,
                                                     shown_at=shown_at, answered_at=answered_at, judgement=judgement)
        return StoredLabel(label, created=created)

    def skip(self, annotator_id: int, served_pair_id: int) -> bool:
        """Skip the annotator's open pair; ``False`` when it was already skipped."""
        with self._admission:
            return self.store.skip_served_pair(annotator_id, served_pair_id)[1]

    def progress(self, annotator_id: int) -> int:
        """Labels this annotator has given so far."""
        return self.store.label_count(annotator_id)

    def suspicion_due(self, annotator_id: int) -> bool:
        """Whether the study's suspicion probe is due for this annotator: it is on, they gave at
        least ``suspicion_probe_after`` labels, and they have not answered it."""
        after = self.study()[0].suspicion_probe_after
        return bool(after) and self.progress(annotator_id) >= after and self.store.suspicion_answer(annotator_id) is None

    def answer_suspicion(self, annotator_id: int, looked_edited: str, what: str | None = None) -> bool:
        """Store the annotator's answer to the suspicion probe (``yes``, ``no`` or ``not_sure``,
        and optionally what gave it away); ``False`` when they had answered already."""
        if looked_edited not in SUSPICION_ANSWERS:
            raise LabelError(f"suspicion probe: answer {looked_edited!r}; one of {', '.join(SUSPICION_ANSWERS)}.")
        note = (what or "").strip()
        if len(note) > MAX_SUSPICION_NOTE:
            raise LabelError(f"suspicion probe: {len(note)} characters; at most {MAX_SUSPICION_NOTE}.")
        self.store.annotator(annotator_id)
        return self.store.record_suspicion(annotator_id, self.study()[1], self.progress(annotator_id), looked_edited, note)
