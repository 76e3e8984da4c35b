"""Quality control: repeats for overlap k, gold items, exclusion and per-annotator counts."""

from __future__ import annotations

import time
from typing import Any

from acquisition.core.errors import ImportFormatError
from acquisition.core.pool import text_hash
from acquisition.core.records import Draw
from collector.store.connection import DEFAULT_LEASE_SECONDS
from collector.store.people import PeopleMixin
from collector.store.served_pairs import ServedPairsMixin


class QCTablesMixin(ServedPairsMixin, PeopleMixin):
    """Quality control: repeats for overlap k, gold items, exclusion and per-annotator counts."""

    # ------------------------------------------------------------------ quality control
    def serve_repeat(self, annotator: dict[str, Any], overlap: int,
                     lease_seconds: float = DEFAULT_LEASE_SECONDS, max_scan: int = 512, *,
                     objective: Draw | None = None, study_version: int | None = None) -> dict[str, Any] | None:
        """Serve ``annotator`` a repeat of the oldest labelled regular pair that has fewer than
        ``overlap`` labels and that this annotator has never been shown (as origin or repeat).

        Labels from excluded annotators do not count; repeats still on lease do, so concurrent
        annotators do not overshoot ``overlap``. The repeat is the same item: prompt, response
        rows, edit vectors, display position, policy, arm, propensities and seed are copied;
        it is logged with ``qc_kind='repeat'`` and ``origin_served_pair_id``.

        Pairs found to have their labels are marked ``overlap_done`` and not read again. At
        most ``max_scan`` candidates are read per call, so after the overlap is raised the
        backlog is worked through over several requests instead of in one slow one.

        Returns:
            the new served pair, or ``None`` when no pair (within the scan) needs this annotator.
        """
        now, annotator_id, after, scanned = time.time(), annotator["id"], 0, 0
        with self.transaction():
            if (current := self._claim_serving(annotator_id, now)) is not None:
                return current  # a concurrent request served this annotator first
            while scanned < max_scan:
                candidates = self._all(
                    "SELECT o.* FROM served_pairs o WHERE o.qc_kind = 'regular' AND o.status = 'labelled' "
                    "AND o.overlap_done = 0 AND o.id > ? AND o.annotator_id != ? AND NOT EXISTS ("
                    "SELECT 1 FROM served_pairs r WHERE r.origin_served_pair_id = o.id AND r.annotator_id = ?) "
                    "ORDER BY o.id LIMIT 64", [after, annotator_id, annotator_id],
                )
                if not candidates:
                    return None
                scanned += len(candidates)
                ids = [c["id"] for c in candidates]
                marks = ", ".join("?" for _ in ids)
                counts = {r["item_id"]: r for r in self._all(
                    "SELECT coalesce(sp.origin_served_pair_id, sp.id) AS item_id, "
                    "coalesce(sum(sp.status = 'labelled' AND a.excluded = 0), 0) AS labelled, "
                    "coalesce(sum(sp.status = 'served' AND sp.lease_expires_at > ?), 0) AS on_lease "
                    "FROM served_pairs sp JOIN annotators a ON a.id = sp.annotator_id "
                    f"WHERE sp.id IN ({marks}) OR sp.origin_served_pair_id IN ({marks}) GROUP BY item_id",
                    [now, *ids, *ids],
                )}
                done = [i for i in ids if counts[i]["labelled"] >= overlap]
                if done:
                    self.db.execute(
                        f"UPDATE served_pairs SET overlap_done = 1 WHERE id IN ({', '.join('?' for _ in done)})", done
                    )
                for origin in candidates:
                    n = counts[origin["id"]]
                    if n["labelled"] + n["on_lease"] >= overlap:
                        continue
                    pair_id = self._insert("served_pairs", {
                        **{c: origin[c] for c in _REPEATED_COLUMNS},
                        "annotator_id": annotator_id, "annotator_group": annotator["group_name"],
                        "served_at": now, "lease_expires_at": now + lease_seconds, "status": "served",
                        "qc_kind": "repeat", "origin_served_pair_id": origin["id"],
                        "study_version": study_version,
                        "objective": objective.value if objective is not None else None,
                        "objective_propensity": objective.probability if objective is not None else None,
                    })
                    return self.served_pair(pair_id)
                after = ids[-1]
        return None

    def reset_overlap(self) -> None:
        """Forget which pairs reached their overlap (after the overlap was raised)."""
        with self.transaction():
            self.db.execute("UPDATE served_pairs SET overlap_done = 0 WHERE overlap_done = 1")

    def item_label_counts(self) -> list[dict[str, Any]]:
        """Labels per item (a regular pair with its repeats), counting every annotator."""
        return self._all(
            "SELECT coalesce(sp.origin_served_pair_id, sp.id) AS item_id, count(l.id) AS labels "
            "FROM served_pairs sp LEFT JOIN labels l ON l.served_pair_id = sp.id "
            "WHERE sp.qc_kind IN ('regular', 'repeat') GROUP BY item_id ORDER BY item_id"
        )

    def add_gold_items(self, items: list[dict[str, Any]], source: str) -> tuple[int, int]:
        """Add gold pairs (known answers) in one transaction: all of them or, on an error, none.

        Args:
            items: each ``{"prompt", "task_type", "external_id", "note", "line", "expected"
                ('first' | 'second' | 'tie' | 'both_bad'), "first" and "second": {"text",
                "quality", "field"}}``, ``field`` naming the input field for error messages.
            source: the file they came from.

        Returns:
            ``(added, already_present)``; the same gold pair given again is not duplicated.

        Raises:
            ImportFormatError: a gold response that is already a pool response of the same
                prompt (policies would then serve it as a regular pair too).
        """
        now = time.time()
        added = present = 0
        with self.transaction():
            for item in items:
                where = f"{source}, line {item['line']}"
                prompt = self._one("SELECT id FROM prompts WHERE text_hash = ?", [text_hash(item["prompt"])])
                prompt_id = prompt["id"] if prompt else self._insert("prompts", {
                    "text": item["prompt"], "text_hash": text_hash(item["prompt"]),
                    "task_type": item.get("task_type") or "general", "source": source,
                    "external_id": item.get("external_id"), "created_at": now,
                })
                ids = []
                for side in (item["first"], item["second"]):
                    h = text_hash(side["text"])
                    found = self._one(
                        "SELECT id, qc_kind FROM responses WHERE prompt_id = ? AND text_hash = ? "
                        "AND parent_response_id IS NULL", [prompt_id, h],
                    )
                    if found and found["qc_kind"] != "gold":
                        raise ImportFormatError(
                            f"{where}, field {side['field']!r}: this text is already response "
                            f"{found['id']} of the pool for this prompt; a gold pair's responses "
                            "must not also be served as regular pairs."
                        )
                    ids.append(found["id"] if found else self._insert("responses", {
                        "prompt_id": prompt_id, "text": side["text"], "text_hash": h,
                        "quality": side.get("quality"), "source": source, "qc_kind": "gold",
                        "created_at": now,
                    }))
                mirrored = {"first": "second", "second": "first"}.get(item["expected"], item["expected"])
                if self._one(
                    "SELECT id FROM gold_items WHERE prompt_id = ? AND ((first_response_id = ? AND "
                    "second_response_id = ? AND expected = ?) OR (first_response_id = ? AND "
                    "second_response_id = ? AND expected = ?))",
                    [prompt_id, ids[0], ids[1], item["expected"], ids[1], ids[0], mirrored],
                ):
                    present += 1
                    continue
                self._insert("gold_items", {
                    "prompt_id": prompt_id, "first_response_id": ids[0], "second_response_id": ids[1],
                    "expected": item["expected"], "note": item.get("note"), "source": source,
                    "line": item["line"], "created_at": now,
                })
                added += 1
        return added, present

    def gold_items(self) -> list[dict[str, Any]]:
        """Every gold pair with its texts, how often it was labelled and answered as expected."""
        return self._all(
            """
            SELECT g.*, p.text AS prompt, f.text AS first_text, s.text AS second_text,
                   (SELECT count(*) FROM served_pairs sp JOIN labels l ON l.served_pair_id = sp.id
                    WHERE sp.gold_item_id = g.id) AS labels,
                   (SELECT count(*) FROM served_pairs sp JOIN labels l ON l.served_pair_id = sp.id
                    WHERE sp.gold_item_id = g.id AND l.choice = sp.qc_expected) AS correct
            FROM gold_items g
            JOIN prompts p ON p.id = g.prompt_id
            JOIN responses f ON f.id = g.first_response_id
            JOIN responses s ON s.id = g.second_response_id
            ORDER BY g.id
            """
        )

    def unseen_gold_items(self, annotator_id: int) -> list[dict[str, Any]]:
        """Gold pairs never served to this annotator, with both texts."""
        return self._all(
            "SELECT g.id, g.prompt_id, g.first_response_id, g.second_response_id, g.expected, "
            "f.text AS first_text, s.text AS second_text FROM gold_items g "
            "JOIN responses f ON f.id = g.first_response_id JOIN responses s ON s.id = g.second_response_id "
            "WHERE NOT EXISTS (SELECT 1 FROM served_pairs sp WHERE sp.gold_item_id = g.id "
            "AND sp.annotator_id = ?) ORDER BY g.id", [annotator_id],
        )

    def set_annotator_excluded(self, annotator_id: int, excluded: bool, reason: str | None = None) -> dict[str, Any]:
        """Flag (or unflag) an annotator as excluded; their labels stay in the database."""
        with self.transaction():
            self.annotator(annotator_id)
            self.db.execute(
                "UPDATE annotators SET excluded = ?, excluded_reason = ?, excluded_at = ? WHERE id = ?",
                [int(excluded), reason if excluded else None, time.time() if excluded else None, annotator_id],
            )
            if excluded:  # the items they labelled may now lack labels
                self.db.execute(
                    "UPDATE served_pairs SET overlap_done = 0 WHERE overlap_done = 1 AND id IN ("
                    "SELECT coalesce(origin_served_pair_id, id) FROM served_pairs "
                    "WHERE annotator_id = ? AND status = 'labelled')", [annotator_id],
                )
        return self.annotator(annotator_id)

    def quality_counts(self) -> list[dict[str, Any]]:
        """Served pairs per annotator, kind and status, with how many were answered as expected."""
        rows = self._all(
            "SELECT annotator_id, qc_kind, status, count(*) AS n FROM served_pairs "
            "GROUP BY annotator_id, qc_kind, status"
        )
        checks = {(r["annotator_id"], r["qc_kind"]): r["as_expected"] for r in self._all(
            "SELECT sp.annotator_id, sp.qc_kind, sum(l.choice = sp.qc_expected) AS as_expected "
            "FROM served_pairs sp JOIN labels l ON l.served_pair_id = sp.id "
            "WHERE sp.qc_kind IN ('gold', 'attention') GROUP BY sp.annotator_id, sp.qc_kind"
        )}
        for r in rows:
            r["as_expected"] = checks.get((r["annotator_id"], r["qc_kind"]), 0) if r["status"] == "labelled" else 0
        return rows

    def median_latencies(self) -> dict[int, float]:
        """Median label latency (ms) per annotator, computed in SQL so 100,000 labels stay cheap."""
        medians = {}
        for row in self._all("SELECT annotator_id, count(*) AS n FROM labels GROUP BY annotator_id"):
            middle = self._all(  # walks the (annotator_id, latency_ms) index to the middle
                "SELECT latency_ms FROM labels WHERE annotator_id = ? ORDER BY latency_ms LIMIT ? OFFSET ?",
                [row["annotator_id"], 2 - row["n"] % 2, (row["n"] - 1) // 2],
            )
            medians[row["annotator_id"]] = sum(m["latency_ms"] for m in middle) / len(middle)
        return medians


# A repeat copies these from its origin: the item and how it was assigned, unchanged.
_REPEATED_COLUMNS = (
    "prompt_id", "left_response_id", "right_response_id", "left_base_response_id",
    "right_base_response_id", "left_edit_vector", "right_edit_vector", "position_swapped",
    "policy_id", "policy_name", "policy_version", "arm", "propensity_score", "arm_propensity",
    "acquisition_score", "model_version", "seed", "family",
)
