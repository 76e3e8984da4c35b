"""Quality control: overlap (each item labelled by k annotators), gold pairs with known
answers, attention checks, per-annotator quality, and excluding an annotator's labels.

Every quality-control pair goes through the same serving path as a regular one and is logged
as a served pair with its ``qc_kind``:

- ``regular``: proposed by the active policy.
- ``repeat``: the same item as an earlier labelled regular pair (prompt, response rows, edits,
  display position, policy, arm, propensities), served to another annotator until the item
  has ``overlap`` labels. Repeats are real labels of the item: they stay in training, in effect
  estimates and in both exports, and ``origin_served_pair_id`` links them to their item so
  agreement can be computed.
- ``gold``: a researcher-supplied pair with a known answer (``python -m collector gold add``).
- ``attention``: generated from the pool, a response against the same response without its
  answering sentence (the ``drop_answer`` editor) or against an answer to another prompt from
  the pool (the ``off_topic`` editor); both sides share the base response.

Gold and attention pairs never train a model, never enter an effect estimate and are left
out of the TRL export; the pairs export keeps them with their kind and expected answer.

The draw is made per served pair: with probability ``gold_rate`` a gold pair, with
``attention_rate`` an attention check, otherwise a repeat if an item needs one, otherwise the
policy's proposal. The QC draw is independent of the item, so a regular pair's stored
propensity (the policy's) stays the right weight for its arm; a QC pair stores its own.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from acquisition.core.pool import PoolSnapshot
from acquisition.core.records import Draw, Proposal, ProposedSide, validate_draw
from acquisition.editors import apply_edit_vector, get_editor
from acquisition.policies import validate_proposal
from collector.serving import snapshots
from collector.serving.qc_settings import QC_POLICY_NAME, QCConfig, qc_config
from collector.store import DEFAULT_LEASE_SECONDS, SideRecord, Store

_QC_STREAM = 0x9C  # the QC draw's own random stream, so a regular pair's seed still replays its proposal


class QualityControl:
    """Decides, for each new served pair, whether it is a gold pair, an attention check or a
    repeat, and records it; ``Collector`` serves the policy's proposal when this returns None."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._config_key: str | None = None
        self._config = QCConfig()
        self._version = 0
        self._pool_version: int | None = None
        self._pool: PoolSnapshot | None = None

    def config(self) -> tuple[QCConfig, int]:
        version = self.store.get_meta("qc_version", "0") or "0"
        with self._lock:
            if version != self._config_key:
                self._config, self._version, self._config_key = qc_config(self.store), int(version), version
            return self._config, self._version

    def serve(self, annotator: dict[str, Any], seed: int,
              lease_seconds: float = DEFAULT_LEASE_SECONDS, pool: PoolSnapshot | None = None, *,
              objective: Draw | None = None, study_version: int | None = None) -> dict[str, Any] | None:
        """A new QC served pair for ``annotator`` (already recorded), or None for a regular one.
        ``pool``: the snapshot the serving policy uses (the server's; default: read one here).
        Gold and attention pairs are proposals like a policy's (family ``quality_control``,
        validated by the same contract, with their exact probability); a repeat is a copy of its
        item, family and propensities included."""
        config, version = self.config()
        if not config.active:
            return None
        rng = np.random.default_rng([seed, _QC_STREAM])
        draw = rng.random()
        pair = None
        spec = {"id": None, "name": QC_POLICY_NAME, "version": version}
        record = dict(policy=spec, seed=seed, lease_seconds=lease_seconds, objective=objective,
                      study_version=study_version)
        if draw < config.gold_rate:
            pair = self._serve_gold(annotator, config, rng, record)
        elif draw < config.gold_rate + config.attention_rate:
            pair = self._serve_attention(annotator, config, rng, record, pool)
        if pair is None and config.overlap > 1:
            pair = self.store.serve_repeat(annotator, config.overlap, lease_seconds,
                                           objective=objective, study_version=study_version)
        return pair

    def _serve_gold(self, annotator: dict[str, Any], config: QCConfig, rng: np.random.Generator,
                    record: dict[str, Any]) -> dict[str, Any] | None:
        with self.store.transaction():  # the unseen check and the record are one step
            unseen = self.store.unseen_gold_items(annotator["id"])
            if not unseen:
                return None
            item = unseen[int(rng.integers(len(unseen)))]
            swapped = bool(rng.random() < 0.5)
            first = SideRecord(item["first_response_id"], {}, item["first_text"], {})
            second = SideRecord(item["second_response_id"], {}, item["second_text"], {})
            left, right = (second, first) if swapped else (first, second)
            expected = item["expected"]
            if expected in ("first", "second"):
                expected = "left" if (expected == "first") != swapped else "right"
            proposal = Proposal(item["prompt_id"], _proposed(left), _proposed(right), swapped, arm="gold",
                                propensity_score=config.gold_rate / len(unseen) / 2, arm_propensity=0.5,
                                family="quality_control")
            return self.store.record_served_pair(annotator, validate_draw(proposal), left, right, qc_kind="gold",
                                                 gold_item_id=item["id"], qc_expected=expected, **record)

    def _snapshot(self) -> PoolSnapshot:
        """A pool snapshot of this store's own (ids only), rebuilt when the pool moves."""
        version = self.store.pool_version
        with self._lock:
            if version != self._pool_version or self._pool is None:
                self._pool = self.store.pool_snapshot(lazy_texts=True)  # ids only; texts read on demand
                self._pool_version = version
            return self._pool

    def _serve_attention(self, annotator: dict[str, Any], config: QCConfig, rng: np.random.Generator,
                         record: dict[str, Any], pool: PoolSnapshot | None = None) -> dict[str, Any] | None:
        pool = pool if pool is not None else self._snapshot()
        kind = config.attention_kinds[int(rng.integers(len(config.attention_kinds)))]
        p_kind = config.attention_rate / len(config.attention_kinds)
        editor = get_editor(kind)
        if not editor.takes_donor:  # drop_answer: the response against itself with the edit made
            if pool.arrays.droppable is None and pool.n_responses >= snapshots.process_threshold():
                return None  # flagging a large pool's texts here would stall: the builder is on it
            drop = editor
            droppable = pool.droppable_ids(lambda text: drop.apply(text, 0) != text)
            if not len(droppable):
                return None
            response_id = int(droppable[int(rng.integers(len(droppable)))])
            text = pool.response_text[response_id]
            prompt_id = pool.prompt_of(response_id)
            intact_vector = {kind: {"on": False, "editor": kind, "seed": 0}}
            dropped_vector = {kind: {"on": True, "editor": kind, "seed": 0}}
            dropped_text, check = apply_edit_vector(text, dropped_vector)
            good = SideRecord(response_id, intact_vector, text, {kind: True})
            bad = SideRecord(response_id, dropped_vector, dropped_text, check)
            propensity = p_kind / len(droppable) / 2
        else:
            servable = pool.servable
            if not servable:
                return None
            prompt = servable[int(rng.integers(len(servable)))]
            others = pool.n_responses - len(prompt.response_ids)
            if others < 1:  # a pool of one prompt has nothing off-topic to offer
                return None
            response_id = prompt.response_ids[int(rng.integers(len(prompt.response_ids)))]
            # the k-th base response that does not answer this prompt, in pool order, is the donor
            donor_id = pool.other_response(prompt.id, int(rng.integers(others)))
            prompt_id, text = prompt.id, pool.response_text[response_id]
            # the off_topic editor swaps the donor in (a built-in answer if the donor shares too
            # many words with the response); its seed names the donor so the copy can be replayed
            kept_vector = {kind: {"on": False, "editor": kind, "seed": donor_id}}
            swapped_vector = {kind: {"on": True, "editor": kind, "seed": donor_id}}
            swapped_text, check = apply_edit_vector(text, swapped_vector, donor=lambda s: pool.response_text[s])
            good = SideRecord(response_id, kept_vector, text, {kind: True})
            bad = SideRecord(response_id, swapped_vector, swapped_text, check)
            propensity = p_kind / len(servable) / len(prompt.response_ids) / others / 2
        swapped = bool(rng.random() < 0.5)
        left, right = (bad, good) if swapped else (good, bad)
        proposal = Proposal(prompt_id, _proposed(left), _proposed(right), swapped, arm=f"attention:{kind}",
                            propensity_score=propensity, arm_propensity=0.5, family="quality_control")
        return self.store.record_served_pair(annotator, validate_proposal(proposal, pool), left, right,
                                             qc_kind="attention", qc_expected="right" if swapped else "left", **record)


def _proposed(side: SideRecord) -> ProposedSide:
    return ProposedSide(side.base_response_id, side.edit_vector, side.response_id)
