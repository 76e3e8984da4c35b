"""Prompts, base responses and imported human preferences."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from acquisition.core.errors import ImportFormatError, NotFoundError
from acquisition.core.pool import PoolArrays, PoolSnapshot, TextLookup, text_hash
from acquisition.core.turns import prompt_turns
from collector.store.connection import StoreBase


class PoolTablesMixin(StoreBase):
    """Prompts, base responses and imported human preferences."""

    # ------------------------------------------------------------------ pool
    def add_pool(self, records: Iterable[dict[str, Any]], source: str) -> tuple[int, int]:
        """Add prompts with their base responses in one transaction.

        Args:
            records: each ``{"prompt": str, "task_type": str, "responses": [{"text", "quality"?,
                "model"?}], "external_id"?: str}``.
            source: where the records came from (file name, ``"demo"``).

        Returns:
            ``(new_prompts, new_responses)``; texts already present are reused, not duplicated.
        """
        now = time.time()
        new_prompts = new_responses = 0
        with self.transaction():
            for record in records:
                prompt_text = record["prompt"]
                existing = self._one(
                    "SELECT id FROM prompts WHERE text_hash = ?", [text_hash(prompt_text)]
                )
                if existing:
                    prompt_id = existing["id"]
                else:
                    turns = record.get("turns") or prompt_turns(prompt_text)
                    prompt_id = self._insert("prompts", {
                        "text": prompt_text, "text_hash": text_hash(prompt_text),
                        "task_type": record.get("task_type") or "general", "source": source,
                        "external_id": record.get("external_id"), "created_at": now,
                        "turns": json.dumps(turns) if len(turns) > 1 else None,
                    })
                    new_prompts += 1
                for response in record["responses"]:
                    h = text_hash(response["text"])
                    found = self._one(
                        "SELECT id, qc_kind FROM responses WHERE prompt_id = ? AND text_hash = ? "
                        "AND parent_response_id IS NULL", [prompt_id, h]
                    )
                    if found and found["qc_kind"] == "gold":
                        where = f"{source}, line {record['line']}" if record.get("line") else source
                        raise ImportFormatError(
                            f"{where}: a response is the same text as gold response {found['id']} of this prompt; "
                            "a gold pair's responses must not also be pool responses (nothing was imported).")
                    if found:
                        continue
                    self._insert("responses", {
                        "prompt_id": prompt_id, "text": response["text"], "text_hash": h,
                        "quality": response.get("quality"), "model": response.get("model"),
                        "source": source, "created_at": now,
                        "generation": json.dumps(response["generation"], sort_keys=True)
                        if response.get("generation") else None,
                    })
                    new_responses += 1
            version = self.pool_version + 1
            self.db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('pool_version', ?)", [str(version)]
            )
        return new_prompts, new_responses

    def add_imported(
        self,
        records: Iterable[dict[str, Any]],
        preferences: Iterable[dict[str, Any]],
        source: str,
        fmt: str,
        file_sha256: str,
    ) -> tuple[int, int, int]:
        """Add an imported file's pool records and its human preferences in ONE transaction.

        Args:
            records: ``add_pool`` records.
            preferences: ``{"prompt", "chosen", "rejected", "outcome" ("chosen"/"tie"/"both_bad"),
                "margin"?, "external_id"?, "line"}``; every text must be in ``records``.
            source: the file name; fmt: its format; file_sha256: the file's hash (a file
                imported twice adds its preferences once).

        Returns:
            ``(new_prompts, new_responses, new_preferences)``.
        """
        now = time.time()
        new_preferences = 0
        with self.transaction():
            new_prompts, new_responses = self.add_pool(records, source=source)
            for pref in preferences:
                prompt = self._one("SELECT id FROM prompts WHERE text_hash = ?", [text_hash(pref["prompt"])])
                if prompt is None:
                    raise NotFoundError(f"{source}, line {pref['line']}: prompt not in the imported records.")
                ids = []
                for side in ("chosen", "rejected"):
                    row = self._one(
                        "SELECT id FROM responses WHERE prompt_id = ? AND text_hash = ? "
                        "AND parent_response_id IS NULL", [prompt["id"], text_hash(pref[side])]
                    )
                    if row is None:
                        raise NotFoundError(f"{source}, line {pref['line']}: {side} response not in the imported records.")
                    ids.append(row["id"])
                covariates = pref.get("covariates")
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO imported_preferences (prompt_id, chosen_response_id, "
                    "rejected_response_id, outcome, tie, margin, source, format, file_sha256, "
                    "external_id, line, created_at, covariates, comparison) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [prompt["id"], ids[0], ids[1], pref["outcome"], int(pref["outcome"] != "chosen"),
                     pref.get("margin"), source, fmt, file_sha256, pref.get("external_id"),
                     pref["line"], now, json.dumps(covariates, sort_keys=True) if covariates else None,
                     pref.get("comparison", 0)],
                )
                new_preferences += cur.rowcount
        return new_prompts, new_responses, new_preferences

    def imported_preferences(self) -> list[dict[str, Any]]:
        """Every imported human preference with its texts (the truth for semi-synthetic studies)."""
        return self._all(
            """
            SELECT ip.*, p.text AS prompt, p.task_type AS task_type,
                   c.text AS chosen, r.text AS rejected
            FROM imported_preferences ip
            JOIN prompts p ON p.id = ip.prompt_id
            JOIN responses c ON c.id = ip.chosen_response_id
            JOIN responses r ON r.id = ip.rejected_response_id
            ORDER BY ip.id
            """
        )

    def pool_arrays(self, previous: PoolArrays | None = None) -> PoolArrays:
        """The base pool as columns (``PoolArrays``). With ``previous`` (an earlier version's
        columns) only the prompts and responses added since are read: the pool only grows, so
        the new columns are the old ones extended (checked by count; a full read otherwise)."""
        base_rows = "parent_response_id IS NULL AND qc_kind IS NULL"
        with self._lock:
            version = self.pool_version
            if previous is not None and previous.version == version:
                return previous
            if previous is not None and self._scalar(
                    f"SELECT count(*) FROM responses WHERE id <= ? AND {base_rows}",
                    [previous.max_response_id]) != len(previous.response_ids):
                previous = None
            base = previous if previous is not None else PoolArrays.empty(version)
            prompts = self._tuples("SELECT id, task_type FROM prompts WHERE id > ? ORDER BY id", [base.max_prompt_id])
            responses = self._tuples(f"SELECT id, prompt_id, quality FROM responses WHERE id > ? AND {base_rows} "
                                     "ORDER BY id", [base.max_response_id])
        return base.extended(version, prompts, responses)

    def pool_snapshot(self, lazy_texts: bool = False, arrays: PoolArrays | None = None) -> PoolSnapshot:
        """The base pool as policies see it, over ``arrays`` (default: read now).

        With ``lazy_texts`` the snapshot holds ids, not texts: response and prompt texts are
        read from this store on demand (``TextLookup``; the server's snapshot at a million
        responses), so the store must stay open while the snapshot is used."""
        arrays = arrays if arrays is not None else self.pool_arrays()
        response_text: Mapping[int, str]
        prompt_text: Mapping[int, str]
        if lazy_texts:
            response_text = TextLookup(arrays.response_ids, self.response_texts)
            prompt_text = TextLookup(arrays.prompt_ids, self.prompt_texts)
        else:
            wanted = set(arrays.response_ids.tolist())
            response_text = {i: t for i, t in self._tuples("SELECT id, text FROM responses WHERE parent_response_id "
                                                           "IS NULL AND qc_kind IS NULL") if i in wanted}
            prompt_text = dict(self._tuples("SELECT id, text FROM prompts WHERE id <= ?", [arrays.max_prompt_id]))
        return PoolSnapshot(arrays, response_text, prompt_text)

    def prompt_texts(self, ids: list[int]) -> dict[int, str]:
        """``{id: text}`` of the given prompts, read in chunks below SQLite's variable limit."""
        out: dict[int, str] = {}
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            out.update(self._tuples(f"SELECT id, text FROM prompts WHERE id IN ({','.join('?' * len(chunk))})", chunk))
        return out

    def response_texts(self, ids: list[int]) -> dict[int, str]:
        """``{id: text}`` of the given responses, read in chunks below SQLite's variable limit."""
        out: dict[int, str] = {}
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            rows = self._all(f"SELECT id, text FROM responses WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            out.update((r["id"], r["text"]) for r in rows)
        return out

    def prompt(self, prompt_id: int) -> dict[str, Any]:
        """The prompt row, its ``turns`` parsed (a tuple of ``{role, content}``; empty: one user turn)."""
        row = self._one("SELECT * FROM prompts WHERE id = ?", [prompt_id])
        if row is None:
            raise NotFoundError(f"No prompt with id {prompt_id}.")
        row["turns"] = tuple(json.loads(row["turns"])) if row.get("turns") else ()
        return row

    def variant(self, response_id: int) -> dict[str, Any]:
        """A stored response with its edit vector and manipulation check parsed."""
        row = self.response(response_id)
        row["manipulation_check"] = json.loads(row["manipulation_check"] or "{}")
        return row

    def response(self, response_id: int) -> dict[str, Any]:
        row = self._one("SELECT * FROM responses WHERE id = ?", [response_id])
        if row is None:
            raise NotFoundError(f"No response with id {response_id}.")
        return row

    def counts(self) -> dict[str, int]:
        """Row counts a researcher wants at a glance."""
        q = {
            "prompts": "SELECT count(*) AS n FROM prompts",
            "base_responses": "SELECT count(*) AS n FROM responses WHERE parent_response_id IS NULL "
                              "AND qc_kind IS NULL",
            "gold_responses": "SELECT count(*) AS n FROM responses WHERE qc_kind = 'gold'",
            "edited_responses": "SELECT count(*) AS n FROM responses WHERE parent_response_id IS NOT NULL",
            "annotators": "SELECT count(*) AS n FROM annotators",
            "served_pairs": "SELECT count(*) AS n FROM served_pairs",
            "labels": "SELECT count(*) AS n FROM labels",
        }
        return {k: int(self._scalar(sql)) for k, sql in q.items()}
