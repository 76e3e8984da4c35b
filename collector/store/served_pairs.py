"""Served pairs, edited variants and labels: what the annotator path writes and training reads."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from acquisition.core.errors import DeconfoundError, LabelError, NotFoundError, StalePairError
from acquisition.core.pool import text_hash
from acquisition.core.records import Draw, EditVector, PolicySpec, Proposal, validate_draw
from collector.store.connection import (
    CHOICES,
    DEFAULT_LEASE_SECONDS,
    MAX_RATIONALE_CHARS,
    WINNERS,
    SideRecord,
    StoreBase,
    edit_key,
)


class ServedPairsMixin(StoreBase):
    """Served pairs, edited variants and labels: what the annotator path writes and training reads."""

    # ------------------------------------------------------------------ serving
    def open_served_pair(self, annotator_id: int, now: float | None = None) -> dict[str, Any] | None:
        """The annotator's served, unlabelled, unskipped pair whose lease has not run out."""
        now = time.time() if now is None else now
        return self._one(
            "SELECT * FROM served_pairs WHERE annotator_id = ? AND status = 'served' "
            "AND lease_expires_at > ? ORDER BY id DESC LIMIT 1",
            [annotator_id, now],
        )

    def _claim_serving(self, annotator_id: int, now: float) -> dict[str, Any] | None:
        """Inside a write transaction, before a new served pair is inserted: the annotator's open
        pair if one is still on lease (a concurrent request served it first; the caller returns
        it instead of serving another), else ``None`` after marking any pair whose lease ran out
        ``'expired'``. With the unique index ``served_pairs_one_open`` this keeps at most one
        open pair per annotator, across threads and processes."""
        assert self.db.conn.in_transaction, "_claim_serving runs inside the inserting transaction"
        current = self.open_served_pair(annotator_id, now)
        if current is not None:
            return current
        self.db.execute(
            "UPDATE served_pairs SET status = 'expired' WHERE annotator_id = ? AND status = 'served'",
            [annotator_id],
        )
        return None

    def release_expired_leases(self, older_than: float) -> int:
        """Mark ``'expired'`` every open pair whose lease ran out before ``older_than`` (the
        caller leaves a grace period: an answer to a pair whose lease just ran out is still taken).
        Returns how many were released."""
        with self.transaction():
            cursor = self.db.execute(
                "UPDATE served_pairs SET status = 'expired' WHERE status = 'served' AND lease_expires_at < ?",
                [older_than],
            )
        return cursor.rowcount

    def record_served_pair(
        self,
        annotator: dict[str, Any],
        proposal: Proposal,
        left: SideRecord,
        right: SideRecord,
        *,
        policy: PolicySpec | dict[str, Any],
        seed: int | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        qc_kind: str = "regular",
        gold_item_id: int | None = None,
        qc_expected: str | None = None,
        objective: Draw | None = None,
        study_version: int | None = None,
    ) -> dict[str, Any]:
        """Materialise both sides (reusing edited copies) and log the served pair, atomically:
        the one place a drawn pair enters the store, serialised here.

        ``proposal`` is the validated draw (``acquisition.core.records.validate_draw``): prompt,
        display order, arm, family and exact propensities; ``left``/``right`` the sides as served
        (texts, edit vectors with the treatment received). ``policy`` is the proposer's version
        (a ``PolicySpec``, or ``{"id", "name", "version"}`` for quality control), ``objective``
        the study's objective draw shown with the pair (``None``: none shown) under the study
        settings ``study_version``.

        If the annotator already has an open pair (a concurrent request served it first), that
        pair is returned and nothing is written: one open pair per annotator.

        ``qc_kind`` is ``'gold'`` or ``'attention'`` for quality-control pairs (``collector/serving/quality_control.py``),
        with the answer a careful annotator gives as displayed in ``qc_expected``."""
        validate_draw(proposal)
        if objective is not None:
            validate_draw(objective)
        now = time.time()
        with self.transaction():
            if (current := self._claim_serving(annotator["id"], now)) is not None:
                return current
            left_id = self._variant_id(proposal.prompt_id, left, now)
            right_id = self._variant_id(proposal.prompt_id, right, now)
            marginals = proposal.edit_marginals
            pair_id = self._insert("served_pairs", {
                "annotator_id": annotator["id"], "annotator_group": annotator["group_name"],
                "prompt_id": proposal.prompt_id,
                "left_response_id": left_id, "right_response_id": right_id,
                "left_base_response_id": left.base_response_id,
                "right_base_response_id": right.base_response_id,
                "left_edit_vector": EditVector.parse(left.edit_vector),
                "right_edit_vector": EditVector.parse(right.edit_vector),
                "position_swapped": int(proposal.position_swapped),
                "policy_id": policy.get("id"), "policy_name": policy["name"],
                "policy_version": policy["version"], "arm": proposal.arm, "family": proposal.family,
                "propensity_score": proposal.propensity_score, "arm_propensity": proposal.arm_propensity,
                "acquisition_score": proposal.acquisition_score, "model_version": proposal.model_version,
                "seed": seed, "served_at": now, "lease_expires_at": now + lease_seconds,
                "status": "served", "qc_kind": qc_kind, "gold_item_id": gold_item_id,
                "qc_expected": qc_expected,
                "study_version": study_version,
                "objective": objective.value if objective is not None else None,
                "objective_propensity": objective.probability if objective is not None else None,
                "edit_marginals": json.dumps(marginals, sort_keys=True) if marginals else None,
            })
        return self.served_pair(pair_id)

    def _variant_id(self, prompt_id: int, side: SideRecord, now: float) -> int:
        if side.response_id is not None:
            stored = self._one("SELECT parent_response_id FROM responses WHERE id = ?", [side.response_id])
            if stored is None or stored["parent_response_id"] != side.base_response_id:
                raise NotFoundError(
                    f"No stored variant {side.response_id} of response {side.base_response_id}."
                )
            return side.response_id
        key = edit_key(side.edit_vector)
        base = self._one("SELECT text FROM responses WHERE id = ?", [side.base_response_id])
        if base is None:
            raise NotFoundError(f"No response with id {side.base_response_id}.")
        if base["text"] == side.text:
            return side.base_response_id
        found = self._one(
            "SELECT id FROM responses WHERE parent_response_id = ? AND edit_key = ?",
            [side.base_response_id, key],
        )
        if found:
            return int(found["id"])
        return self._insert("responses", {
            "prompt_id": prompt_id, "text": side.text, "text_hash": text_hash(side.text),
            "parent_response_id": side.base_response_id,
            "edit_vector": EditVector.parse(side.edit_vector).to_json(), "edit_key": key,
            "manipulation_check": json.dumps(side.manipulation_check, sort_keys=True),
            "source": "editor", "created_at": now,
        })

    def add_variant(self, parent_response_id: int, text: str, edit_vector: dict[str, Any],
                    manipulation_check: dict[str, bool], source: str) -> int:
        """Store a pre-generated edited copy of a base response (an LLM rewrite) and return its id.

        Raises:
            NotFoundError: the parent is not a base response.
            DeconfoundError: a variant with the same edit key is already stored.
        """
        key = edit_key(edit_vector)
        with self.transaction():
            parent = self._one(
                "SELECT prompt_id FROM responses WHERE id = ? AND parent_response_id IS NULL",
                [parent_response_id],
            )
            if parent is None:
                raise NotFoundError(f"No base response with id {parent_response_id}.")
            if self._one("SELECT id FROM responses WHERE parent_response_id = ? AND edit_key = ?",
                         [parent_response_id, key]):
                raise DeconfoundError(f"Response {parent_response_id} already has the variant {key}.")
            return self._insert("responses", {
                "prompt_id": parent["prompt_id"], "text": text, "text_hash": text_hash(text),
                "parent_response_id": parent_response_id,
                "edit_vector": EditVector.parse(edit_vector).to_json(), "edit_key": key,
                "manipulation_check": json.dumps(manipulation_check, sort_keys=True),
                "source": source, "created_at": time.time(),
            })

    def variants(self, source: str) -> list[dict[str, Any]]:
        """Every stored variant from one source (e.g. ``"rewriter"``), edit vector and check parsed."""
        rows = self._all(
            "SELECT id, prompt_id, parent_response_id, text, edit_vector, manipulation_check "
            "FROM responses WHERE parent_response_id IS NOT NULL AND source = ? ORDER BY id", [source]
        )
        for row in rows:
            row["manipulation_check"] = json.loads(row["manipulation_check"] or "{}")
        return rows

    def served_pair(self, served_pair_id: int) -> dict[str, Any]:
        row = self._one("SELECT * FROM served_pairs WHERE id = ?", [served_pair_id])
        if row is None:
            raise NotFoundError(f"No served pair with id {served_pair_id}.")
        return row

    def submit_label(
        self,
        annotator_id: int,
        served_pair_id: int,
        choice: str,
        strength: int | None = None,
        rationale: str | None = None,
        *,
        shown_at: float | None = None,
        answered_at: float | None = None,
        judgement: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Record the label answering one served pair: the pair the annotator was shown.

        The pair must be the annotator's open pair; an answer to it is taken even if its lease
        ran out meanwhile, as long as no newer pair replaced it.

        Args:
            shown_at: server time the page showed the pair (default: when it was served).
            answered_at: server time the answer arrived (default: now); ``latency_ms`` is
                ``answered_at - shown_at``.
            judgement: a model judge's record (model, template, raw reply), stored as JSON.

        Returns:
            ``(label, created)``. A second submission for the same pair returns the first
            label with ``created=False`` and changes nothing.

        Raises:
            StalePairError: the pair was skipped, or replaced by a newer pair; nothing written.
            LabelError: unknown pair, a pair served to someone else, or an invalid choice,
                strength (1-3, with a winner only) or rationale.
        """
        if choice not in CHOICES:
            raise LabelError(f"choice must be one of {', '.join(CHOICES)}; got {choice!r}.")
        if strength is not None and (type(strength) is not int or strength not in (1, 2, 3)):
            raise LabelError(f"strength must be 1, 2 or 3 (or left out); got {strength!r}.")
        if strength is not None and choice not in WINNERS:
            raise LabelError(f"strength goes with a winner (left or right), not with {choice!r}; "
                             "leave it out for a tie or both bad.")
        if rationale is not None and not isinstance(rationale, str):
            raise LabelError(f"rationale must be text; got {type(rationale).__name__}.")
        rationale = (rationale or "").strip() or None
        if rationale is not None and len(rationale) > MAX_RATIONALE_CHARS:
            raise LabelError(f"rationale is {len(rationale):,} characters; at most {MAX_RATIONALE_CHARS:,}.")
        answered_at = time.time() if answered_at is None else answered_at
        with self.transaction():
            pair = self._owned_pair(annotator_id, served_pair_id)
            existing = self._one("SELECT * FROM labels WHERE served_pair_id = ?", [served_pair_id])
            if existing:
                return existing, False
            if pair["status"] != "served":
                raise StalePairError(_stale_message(pair))
            shown = pair["served_at"] if shown_at is None else max(shown_at, pair["served_at"])
            self._insert("labels", {
                "served_pair_id": served_pair_id, "annotator_id": annotator_id, "choice": choice,
                "strength": strength, "rationale": rationale, "shown_at": shown,
                "latency_ms": max(0, int(round((answered_at - shown) * 1000))), "created_at": answered_at,
                "judgement": json.dumps(judgement, sort_keys=True) if judgement else None,
            })
            self.db.execute(
                "UPDATE served_pairs SET status = 'labelled' WHERE id = ?", [served_pair_id]
            )
            label = self._one("SELECT * FROM labels WHERE served_pair_id = ?", [served_pair_id])
        assert label is not None  # inserted just now
        return label, True

    def _owned_pair(self, annotator_id: int, served_pair_id: int) -> dict[str, Any]:
        pair = self._one("SELECT * FROM served_pairs WHERE id = ?", [served_pair_id])
        if pair is None:
            raise LabelError(f"Served pair {served_pair_id} does not exist; label refused.")
        if pair["annotator_id"] != annotator_id:
            raise LabelError(
                f"Served pair {served_pair_id} was served to another annotator, "
                f"not to annotator {annotator_id}; label refused."
            )
        return pair

    def skip_served_pair(self, annotator_id: int, served_pair_id: int) -> tuple[dict[str, Any], bool]:
        """Mark the annotator's open pair as skipped (kept in the log, never labelled).

        Returns:
            ``(pair, skipped_now)``; skipping a pair already skipped changes nothing.

        Raises:
            StalePairError: the pair was answered, or replaced by a newer pair; nothing written.
        """
        with self.transaction():
            pair = self._owned_pair(annotator_id, served_pair_id)
            if pair["status"] == "skipped":
                return pair, False
            if pair["status"] != "served":
                raise StalePairError(_stale_message(pair))
            self.db.execute(
                "UPDATE served_pairs SET status = 'skipped', skipped_at = ? WHERE id = ?",
                [time.time(), served_pair_id],
            )
        return self.served_pair(served_pair_id), True

    def served_count(self, annotator_id: int) -> int:
        """Pairs served to this annotator so far (labelled, skipped or open)."""
        return int(self._scalar("SELECT count(*) AS n FROM served_pairs WHERE annotator_id = ?", [annotator_id]))

    def served_base_pairs_since(self, last_served_id: int = 0) -> list[tuple[int, int, int, int]]:
        """Regular (not quality-control) served pairs with id above ``last_served_id`` as
        ``(served pair id, prompt id, left base id, right base id)``, in id order: what the
        ``active`` policy reads, incrementally, to never serve a base pair twice."""
        rows = self._tuples(  # a read: on this thread's read connection, never the writer's unlocked
            "SELECT id, prompt_id, left_base_response_id, right_base_response_id FROM served_pairs "
            "WHERE id > ? AND qc_kind = 'regular' ORDER BY id", [last_served_id])
        return [(int(a), int(b), int(c), int(d)) for a, b, c, d in rows]

    def labelled_cells_since(self, last_label_id: int = 0) -> list[dict[str, Any]]:
        """Labels with id above ``last_label_id``, each with what places it in a design cell:
        prompt type, annotator group, base responses and edit vectors (for overlap targeting,
        which reads them incrementally)."""
        return self._all(
            "SELECT l.id AS label_id, p.task_type, sp.annotator_group, "
            "sp.left_base_response_id, sp.right_base_response_id, "
            "sp.left_edit_vector, sp.right_edit_vector "
            "FROM labels l JOIN served_pairs sp ON sp.id = l.served_pair_id "
            "JOIN prompts p ON p.id = sp.prompt_id WHERE l.id > ? ORDER BY l.id",
            [last_label_id],
        )

    def label_count(self, annotator_id: int | None = None) -> int:
        if annotator_id is None:
            return int(self._scalar("SELECT count(*) AS n FROM labels"))
        return int(self._scalar(
            "SELECT count(*) AS n FROM labels WHERE annotator_id = ?", [annotator_id]
        ))

    def labels(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM labels ORDER BY id")

    def texts_after(self, prompt_id: int, response_id: int, limit: int | None = None) -> tuple[list[str], int, int]:
        """Prompt and response texts added after the given ids (at most ``limit``, prompts
        first), with the highest ids returned (the trainer embeds them in the background, a
        chunk at a time, as they arrive)."""
        cap = -1 if limit is None else limit
        prompts = self._all("SELECT id, text FROM prompts WHERE id > ? ORDER BY id LIMIT ?", [prompt_id, cap])
        left = -1 if limit is None else limit - len(prompts)
        responses = self._all("SELECT id, text FROM responses WHERE id > ? ORDER BY id LIMIT ?",
                              [response_id, left]) if left != 0 else []
        texts = [r["text"] for r in prompts] + [r["text"] for r in responses]
        return (texts, prompts[-1]["id"] if prompts else prompt_id,
                responses[-1]["id"] if responses else response_id)

    def pending_texts(self) -> int:
        """Prompts and responses the trainer has not embedded yet (``texts_after`` its marks)."""
        (count,), = self._tuples(
            "SELECT (SELECT count(*) FROM prompts WHERE id > ?) + (SELECT count(*) FROM responses WHERE id > ?)",
            [int(self.get_meta("embedded_prompt_id", "0") or 0), int(self.get_meta("embedded_response_id", "0") or 0)])
        return int(count)

    def decisive_edit_vectors(self) -> list[dict[str, Any]]:
        """Labels with a winner, with both sides' edit vectors (for the design-space GP); the
        same labels as ``training_rows``."""
        return self._all(
            "SELECT l.choice, sp.left_edit_vector, sp.right_edit_vector FROM labels l "
            "JOIN served_pairs sp ON sp.id = l.served_pair_id "
            "JOIN annotators a ON a.id = sp.annotator_id WHERE l.choice IN ('left', 'right') "
            "AND sp.qc_kind IN ('regular', 'repeat') AND a.excluded = 0"
        )

    def training_rows(self, include_excluded: bool = False) -> list[dict[str, Any]]:
        """Every label with the texts a reward model trains on (parents for edited copies).

        Repeats (overlap) are real labels of their item and stay; gold pairs and attention
        checks never train; excluded annotators' labels are left out unless ``include_excluded``.
        """
        return self._all(
            """
            SELECT l.id AS label_id, l.choice, sp.id AS served_pair_id, sp.prompt_id, sp.annotator_group,
                   sp.objective, sp.arm_propensity, sp.left_base_response_id = sp.right_base_response_id AS same_base,
                   sp.left_edit_vector, sp.right_edit_vector,
                   p.text AS prompt, lr.text AS left_text, rr.text AS right_text,
                   lb.text AS left_base_text, rb.text AS right_base_text
            FROM labels l
            JOIN served_pairs sp ON sp.id = l.served_pair_id
            JOIN prompts p ON p.id = sp.prompt_id
            JOIN responses lr ON lr.id = sp.left_response_id
            JOIN responses rr ON rr.id = sp.right_response_id
            JOIN responses lb ON lb.id = sp.left_base_response_id
            JOIN responses rb ON rb.id = sp.right_base_response_id
            JOIN annotators a ON a.id = sp.annotator_id
            WHERE sp.qc_kind IN ('regular', 'repeat') AND (a.excluded = 0 OR ?)
            ORDER BY l.id
            """, [int(include_excluded)]
        )

    def served_pair_log_batches(self, batch: int = 5000) -> Iterator[list[dict[str, Any]]]:
        """``served_pair_log`` a batch of rows at a time, in id order (an export of a million
        labels never holds every row's texts at once)."""
        after = 0
        while rows := self.served_pair_log(after=after, limit=batch):
            yield rows
            after = rows[-1]["id"]

    def assignment_log_batches(self, batch: int = 50_000) -> Iterator[list[dict[str, Any]]]:
        """What the export's training weights read of every served pair, a batch at a time in id
        order: ``id``, ``policy_name``, ``policy_version``, ``arm``, ``arm_propensity``, ``qc_kind``,
        the label's ``choice`` and the annotator's ``annotator_excluded``, named as in
        ``served_pair_log`` (no texts: a million rows of these fit in a few tens of MB)."""
        after = 0
        while rows := self._all(
            """
            SELECT sp.id, sp.policy_name, sp.policy_version, sp.arm, sp.arm_propensity, sp.qc_kind,
                   l.choice AS choice, a.excluded AS annotator_excluded
            FROM served_pairs sp
            JOIN annotators a ON a.id = sp.annotator_id
            LEFT JOIN labels l ON l.served_pair_id = sp.id
            WHERE sp.id > ?
            ORDER BY sp.id LIMIT ?
            """, [after, batch]
        ):
            yield rows
            after = rows[-1]["id"]

    def served_pair_log(self, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Every served pair (with an id above ``after``, at most ``limit``) with its texts,
        annotator, policy config and label (if any)."""
        return self._all(
            """
            SELECT sp.*, p.text AS prompt, p.task_type AS task_type,
                   lr.text AS left_text, rr.text AS right_text,
                   lb.model AS left_source_model, rb.model AS right_source_model,
                   lb.generation AS left_generation, rb.generation AS right_generation,
                   a.name AS annotator_name, a.objective AS annotator_objective,
                   a.covariates AS annotator_covariates,
                   a.excluded AS annotator_excluded, a.excluded_reason AS annotator_excluded_reason,
                   l.id AS label_id, l.choice AS choice, l.strength AS strength,
                   l.rationale AS rationale, l.latency_ms AS latency_ms,
                   l.shown_at AS shown_at, l.created_at AS labelled_at, l.judgement AS judgement
            FROM served_pairs sp
            JOIN prompts p ON p.id = sp.prompt_id
            JOIN responses lr ON lr.id = sp.left_response_id
            JOIN responses rr ON rr.id = sp.right_response_id
            LEFT JOIN responses lb ON lb.id = sp.left_base_response_id
            LEFT JOIN responses rb ON rb.id = sp.right_base_response_id
            JOIN annotators a ON a.id = sp.annotator_id
            LEFT JOIN labels l ON l.served_pair_id = sp.id
            WHERE sp.id > ?
            ORDER BY sp.id LIMIT ?
            """, [after, -1 if limit is None else limit]
        )


def _stale_message(pair: dict[str, Any]) -> str:
    why = {"labelled": "was already answered", "skipped": "was skipped",
           "expired": "was released after its lease ran out (a newer pair replaces it)"}.get(pair["status"], "is not open")
    return f"Served pair {pair['id']} {why}; nothing was saved."
