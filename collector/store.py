"""The whole data API of Deconfound: one class over ``sqlite_utils.Database``.

Pages, policies and the CLI never write SQL; they call a method here. Every write is
one ``BEGIN IMMEDIATE`` transaction, so a crash mid-write leaves nothing half-done and
two processes (the app and ``python -m collector simulate``) can share one file.

sqlite-utils' own ``insert``/``upsert`` commit through ``with conn:``, which would end an
enclosing transaction early, so writes that must be atomic use ``_insert`` below.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from collector.errors import AuthError, DeconfoundError, ImportFormatError, LabelError, NotFoundError

SCHEMA_VERSION = 1
CHOICES = ("left", "right", "tie", "both_bad")
DEFAULT_LEASE_SECONDS = 30 * 60

# Columns added after a table was first created: {table: {column: "TYPE [DEFAULT ...]"}}.
# `_ensure_schema` adds whichever are missing, so databases made by older code keep working.
# New tables go straight into `_create_tables` (CREATE ... IF NOT EXISTS).
ADDED_COLUMNS: dict[str, dict[str, str]] = {
    # quality control (collector/qc.py): a served pair is 'regular', a 'repeat' of an earlier
    # regular pair (overlap k), a 'gold' pair or an 'attention' check; qc_expected is the
    # answer a careful annotator gives as displayed; overlap_done marks a regular pair with k labels
    "served_pairs": {
        "qc_kind": "TEXT NOT NULL DEFAULT 'regular'",
        "origin_served_pair_id": "INTEGER REFERENCES served_pairs(id)",
        "gold_item_id": "INTEGER REFERENCES gold_items(id)",
        "qc_expected": "TEXT",
        "overlap_done": "INTEGER NOT NULL DEFAULT 0",
    },
    # an excluded annotator's labels stay here, flagged, and leave training and the TRL export
    "annotators": {"excluded": "INTEGER NOT NULL DEFAULT 0", "excluded_reason": "TEXT", "excluded_at": "REAL"},
    # 'gold' for the responses of gold pairs, which policies never see (NULL: the pool)
    "responses": {"qc_kind": "TEXT"},
}
# Indexes on added columns, created after the columns exist.
ADDED_INDEXES: tuple[str, ...] = (
    "CREATE INDEX IF NOT EXISTS served_pairs_origin ON served_pairs(origin_served_pair_id, annotator_id) "
    "WHERE origin_served_pair_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS served_pairs_gold ON served_pairs(gold_item_id, annotator_id) "
    "WHERE gold_item_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS served_pairs_overlap_open ON served_pairs(id) "
    "WHERE qc_kind = 'regular' AND status = 'labelled' AND overlap_done = 0",
    # per-annotator quality reads these indexes only, not the wide rows
    "CREATE INDEX IF NOT EXISTS served_pairs_quality ON served_pairs(annotator_id, qc_kind, status, qc_expected)",
    "CREATE INDEX IF NOT EXISTS labels_annotator_latency ON labels(annotator_id, latency_ms)",
)


def text_hash(text: str) -> str:
    """`sha256` hex digest of a text, the key for de-duplication and embedding caches."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(("deconfound-token:" + token).encode("utf-8")).hexdigest()


def edit_key(edit_vector: dict[str, Any]) -> str:
    """Canonical string of the attributes switched on (with editor and seed), used to reuse variants.

    An LLM rewrite (editor ``llm:<model>``) changes the text whichever way it switches its
    attribute, so its entry is kept when it is off too (a rewrite-of-rewrite is a variant)."""
    on = {a: e for a, e in sorted(edit_vector.items())
          if e.get("on") or str(e.get("editor", "")).startswith("llm:")}
    return json.dumps(on, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class PoolPrompt:
    id: int
    text: str
    task_type: str
    response_ids: tuple[int, ...]


@dataclass
class PoolSnapshot:
    """Read-only view of the base pool that policies choose from (edited copies excluded)."""

    version: int
    prompts: list[PoolPrompt]
    response_text: dict[int, str]
    response_quality: dict[int, float | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_id = {p.id: p for p in self.prompts}

    @property
    def servable(self) -> list[PoolPrompt]:
        return [p for p in self.prompts if len(p.response_ids) >= 2]

    def prompt(self, prompt_id: int) -> PoolPrompt:
        try:
            return self._by_id[prompt_id]
        except KeyError:
            raise NotFoundError(f"No prompt with id {prompt_id} in the pool.") from None


@dataclass(frozen=True)
class SideRecord:
    """One side of a pair as the serving layer hands it to storage."""

    base_response_id: int
    edit_vector: dict[str, Any]
    text: str
    manipulation_check: dict[str, bool]
    response_id: int | None = None  # a stored variant of the base (an LLM rewrite), served as it is


class Store:
    """Deconfound's database: pool, annotators, policies, served pairs and labels.

    Args:
        path: SQLite file, or ``":memory:"`` for tests.
    """

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        if self.path != ":memory:":
            self.db.enable_wal()
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self._ensure_schema()

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error."""
        with self._lock:
            conn = self.db.conn
            if conn.in_transaction:  # nested: join the outer transaction
                yield
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        cols = ", ".join(f"[{c}]" for c in row)
        marks = ", ".join("?" for _ in row)
        cur = self.db.execute(f"INSERT INTO [{table}] ({cols}) VALUES ({marks})", list(row.values()))
        return int(cur.lastrowid)

    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        with self._lock:
            rows = list(self.db.query(sql, list(params)))
        return rows[0] if rows else None

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query(sql, list(params)))

    def close(self) -> None:
        self.db.conn.close()

    def _ensure_schema(self) -> None:
        """Create missing tables, indexes and columns; every step is idempotent, so an older
        database is brought up to date in place and nothing in it is lost."""
        with self._lock:
            if "meta" in set(self.db.table_names()):
                found = int(self.get_meta("schema_version", "0"))
                if found > SCHEMA_VERSION:
                    raise DeconfoundError(
                        f"{self.path}: database schema version {found} is newer than this "
                        f"code's ({SCHEMA_VERSION}); upgrade Deconfound."
                    )
            with self.transaction():
                self._create_tables()
                for table, columns in ADDED_COLUMNS.items():
                    have = {row[1] for row in self.db.execute(f"PRAGMA table_info([{table}])").fetchall()}
                    for column, decl in columns.items():
                        if column not in have:
                            self.db.execute(f"ALTER TABLE [{table}] ADD COLUMN [{column}] {decl}")
                for statement in ADDED_INDEXES:
                    self.db.execute(statement)
                self.db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                    [str(SCHEMA_VERSION)],
                )

    def _create_tables(self) -> None:
        ddl = """
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS prompts (
            id INTEGER PRIMARY KEY, text TEXT NOT NULL, text_hash TEXT NOT NULL UNIQUE,
            task_type TEXT NOT NULL DEFAULT 'general', source TEXT, external_id TEXT,
            created_at REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS responses (
            id INTEGER PRIMARY KEY, prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            text TEXT NOT NULL, text_hash TEXT NOT NULL,
            parent_response_id INTEGER REFERENCES responses(id),
            edit_vector TEXT, edit_key TEXT, manipulation_check TEXT,
            quality REAL, model TEXT, source TEXT, created_at REAL NOT NULL);
        CREATE UNIQUE INDEX IF NOT EXISTS responses_base_unique
            ON responses(prompt_id, text_hash) WHERE parent_response_id IS NULL;
        CREATE UNIQUE INDEX IF NOT EXISTS responses_variant_unique
            ON responses(parent_response_id, edit_key) WHERE parent_response_id IS NOT NULL;
        CREATE INDEX IF NOT EXISTS responses_prompt ON responses(prompt_id);
        CREATE TABLE IF NOT EXISTS annotators (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
            group_name TEXT NOT NULL DEFAULT 'default', objective TEXT,
            covariates TEXT NOT NULL DEFAULT '{}', is_simulated INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS policies (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, version INTEGER NOT NULL UNIQUE,
            config TEXT NOT NULL, is_active INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS served_pairs (
            id INTEGER PRIMARY KEY,
            annotator_id INTEGER NOT NULL REFERENCES annotators(id),
            annotator_group TEXT NOT NULL,
            prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            left_response_id INTEGER NOT NULL REFERENCES responses(id),
            right_response_id INTEGER NOT NULL REFERENCES responses(id),
            left_base_response_id INTEGER NOT NULL REFERENCES responses(id),
            right_base_response_id INTEGER NOT NULL REFERENCES responses(id),
            left_edit_vector TEXT NOT NULL, right_edit_vector TEXT NOT NULL,
            position_swapped INTEGER NOT NULL,
            policy_id INTEGER REFERENCES policies(id), policy_name TEXT NOT NULL,
            policy_version INTEGER NOT NULL, arm TEXT NOT NULL,
            propensity_score REAL NOT NULL, arm_propensity REAL NOT NULL,
            acquisition_score REAL, model_version TEXT, seed INTEGER,
            served_at REAL NOT NULL, lease_expires_at REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'served', skipped_at REAL);
        CREATE INDEX IF NOT EXISTS served_pairs_annotator ON served_pairs(annotator_id, status);
        CREATE TABLE IF NOT EXISTS labels (
            id INTEGER PRIMARY KEY,
            served_pair_id INTEGER NOT NULL UNIQUE REFERENCES served_pairs(id),
            annotator_id INTEGER NOT NULL REFERENCES annotators(id),
            choice TEXT NOT NULL, strength INTEGER, rationale TEXT,
            latency_ms INTEGER NOT NULL, created_at REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS imported_preferences (
            id INTEGER PRIMARY KEY, prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            chosen_response_id INTEGER NOT NULL REFERENCES responses(id),
            rejected_response_id INTEGER NOT NULL REFERENCES responses(id),
            outcome TEXT NOT NULL, tie INTEGER NOT NULL, margin REAL,
            source TEXT NOT NULL, format TEXT NOT NULL, file_sha256 TEXT NOT NULL,
            external_id TEXT, line INTEGER NOT NULL, created_at REAL NOT NULL,
            UNIQUE (file_sha256, line));
        CREATE TABLE IF NOT EXISTS gold_items (
            id INTEGER PRIMARY KEY, prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            first_response_id INTEGER NOT NULL REFERENCES responses(id),
            second_response_id INTEGER NOT NULL REFERENCES responses(id),
            expected TEXT NOT NULL, note TEXT, source TEXT, line INTEGER, created_at REAL NOT NULL);
        """
        for statement in ddl.split(";"):
            if statement.strip():
                self.db.execute(statement)

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", [key])
        return row["value"] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])

    @property
    def pool_version(self) -> int:
        return int(self.get_meta("pool_version", "0") or 0)

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
                    prompt_id = self._insert("prompts", {
                        "text": prompt_text, "text_hash": text_hash(prompt_text),
                        "task_type": record.get("task_type") or "general", "source": source,
                        "external_id": record.get("external_id"), "created_at": now,
                    })
                    new_prompts += 1
                for response in record["responses"]:
                    h = text_hash(response["text"])
                    if self._one(
                        "SELECT id FROM responses WHERE prompt_id = ? AND text_hash = ? "
                        "AND parent_response_id IS NULL", [prompt_id, h]
                    ):
                        continue
                    self._insert("responses", {
                        "prompt_id": prompt_id, "text": response["text"], "text_hash": h,
                        "quality": response.get("quality"), "model": response.get("model"),
                        "source": source, "created_at": now,
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
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO imported_preferences (prompt_id, chosen_response_id, "
                    "rejected_response_id, outcome, tie, margin, source, format, file_sha256, "
                    "external_id, line, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [prompt["id"], ids[0], ids[1], pref["outcome"], int(pref["outcome"] != "chosen"),
                     pref.get("margin"), source, fmt, file_sha256, pref.get("external_id"),
                     pref["line"], now],
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

    def pool_snapshot(self) -> PoolSnapshot:
        """The base pool as policies see it; cheap enough to rebuild when the pool version moves."""
        with self._lock:
            version = self.pool_version
            prompts = self._all("SELECT id, text, task_type FROM prompts ORDER BY id")
            responses = self._all(
                "SELECT id, prompt_id, text, quality FROM responses "
                "WHERE parent_response_id IS NULL AND qc_kind IS NULL ORDER BY id"
            )
        by_prompt: dict[int, list[int]] = {}
        for r in responses:
            by_prompt.setdefault(r["prompt_id"], []).append(r["id"])
        return PoolSnapshot(
            version=version,
            prompts=[
                PoolPrompt(p["id"], p["text"], p["task_type"], tuple(by_prompt.get(p["id"], ())))
                for p in prompts
            ],
            response_text={r["id"]: r["text"] for r in responses},
            response_quality={r["id"]: r["quality"] for r in responses},
        )

    def prompt(self, prompt_id: int) -> dict[str, Any]:
        row = self._one("SELECT * FROM prompts WHERE id = ?", [prompt_id])
        if row is None:
            raise NotFoundError(f"No prompt with id {prompt_id}.")
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
            "base_responses": "SELECT count(*) AS n FROM responses WHERE parent_response_id IS NULL",
            "edited_responses": "SELECT count(*) AS n FROM responses WHERE parent_response_id IS NOT NULL",
            "annotators": "SELECT count(*) AS n FROM annotators",
            "served_pairs": "SELECT count(*) AS n FROM served_pairs",
            "labels": "SELECT count(*) AS n FROM labels",
        }
        return {k: int(self._one(sql)["n"]) for k, sql in q.items()}

    # ------------------------------------------------------------------ annotators
    def add_annotator(
        self,
        name: str,
        group: str = "default",
        covariates: dict[str, str] | None = None,
        objective: str | None = None,
        is_simulated: bool = False,
    ) -> tuple[dict[str, Any], str]:
        """Create an annotator and return ``(row, token)``; only the token's hash is stored."""
        if not name.strip():
            raise DeconfoundError("An annotator needs a non-empty name.")
        token = secrets.token_urlsafe(16)
        with self.transaction():
            annotator_id = self._insert("annotators", {
                "name": name.strip(), "token_hash": token_hash(token), "group_name": group,
                "objective": objective, "covariates": json.dumps(covariates or {}, sort_keys=True),
                "is_simulated": int(is_simulated), "created_at": time.time(),
            })
        return self.annotator(annotator_id), token

    def annotator(self, annotator_id: int) -> dict[str, Any]:
        row = self._one("SELECT * FROM annotators WHERE id = ?", [annotator_id])
        if row is None:
            raise NotFoundError(f"No annotator with id {annotator_id}.")
        return row

    def annotator_by_token(self, token: str) -> dict[str, Any]:
        row = self._one("SELECT * FROM annotators WHERE token_hash = ?", [token_hash(token.strip())])
        if row is None:
            raise AuthError("Unknown token: ask the study's researcher for your login link.")
        return row

    def annotators(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM annotators ORDER BY id")

    # ------------------------------------------------------------------ policies
    def activate_policy(self, name: str, config: dict[str, Any]) -> dict[str, Any]:
        """Store a policy config as the next version and make it the active one."""
        with self.transaction():
            row = self._one("SELECT coalesce(max(version), 0) AS v FROM policies")
            version = int(row["v"]) + 1
            self.db.execute("UPDATE policies SET is_active = 0 WHERE is_active = 1")
            self._insert("policies", {
                "name": name, "version": version, "config": json.dumps(config, sort_keys=True),
                "is_active": 1, "created_at": time.time(),
            })
        return self.active_policy()

    def active_policy(self) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM policies WHERE is_active = 1")
        if row:
            row["config"] = json.loads(row["config"])
        return row

    def policies(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM policies ORDER BY version")

    # ------------------------------------------------------------------ serving
    def open_served_pair(self, annotator_id: int, now: float | None = None) -> dict[str, Any] | None:
        """The annotator's served, unlabelled, unskipped pair whose lease has not run out."""
        now = time.time() if now is None else now
        return self._one(
            "SELECT * FROM served_pairs WHERE annotator_id = ? AND status = 'served' "
            "AND lease_expires_at > ? ORDER BY id DESC LIMIT 1",
            [annotator_id, now],
        )

    def record_served_pair(
        self,
        annotator: dict[str, Any],
        prompt_id: int,
        left: SideRecord,
        right: SideRecord,
        *,
        position_swapped: bool,
        policy: dict[str, Any],
        arm: str,
        propensity_score: float,
        arm_propensity: float,
        acquisition_score: float | None = None,
        model_version: str | None = None,
        seed: int | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        qc_kind: str = "regular",
        gold_item_id: int | None = None,
        qc_expected: str | None = None,
    ) -> dict[str, Any]:
        """Materialise both sides (reusing edited copies) and log the served pair, atomically.

        ``qc_kind`` is ``'gold'`` or ``'attention'`` for quality-control pairs (``collector/qc.py``),
        with the answer a careful annotator gives as displayed in ``qc_expected``."""
        now = time.time()
        with self.transaction():
            left_id = self._variant_id(prompt_id, left, now)
            right_id = self._variant_id(prompt_id, right, now)
            pair_id = self._insert("served_pairs", {
                "annotator_id": annotator["id"], "annotator_group": annotator["group_name"],
                "prompt_id": prompt_id,
                "left_response_id": left_id, "right_response_id": right_id,
                "left_base_response_id": left.base_response_id,
                "right_base_response_id": right.base_response_id,
                "left_edit_vector": json.dumps(left.edit_vector, sort_keys=True),
                "right_edit_vector": json.dumps(right.edit_vector, sort_keys=True),
                "position_swapped": int(position_swapped),
                "policy_id": policy.get("id"), "policy_name": policy["name"],
                "policy_version": policy["version"], "arm": arm,
                "propensity_score": propensity_score, "arm_propensity": arm_propensity,
                "acquisition_score": acquisition_score, "model_version": model_version,
                "seed": seed, "served_at": now, "lease_expires_at": now + lease_seconds,
                "status": "served", "qc_kind": qc_kind, "gold_item_id": gold_item_id,
                "qc_expected": qc_expected,
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
            "edit_vector": json.dumps(side.edit_vector, sort_keys=True), "edit_key": key,
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
                "edit_vector": json.dumps(edit_vector, sort_keys=True), "edit_key": key,
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
            row["edit_vector"] = json.loads(row["edit_vector"])
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
    ) -> tuple[dict[str, Any], bool]:
        """Record the label answering one served pair.

        Returns:
            ``(label, created)``. A second submission for the same pair returns the first
            label with ``created=False`` and changes nothing.

        Raises:
            LabelError: unknown pair, a pair served to someone else, a skipped pair, or an
                invalid choice / strength.
        """
        if choice not in CHOICES:
            raise LabelError(f"choice must be one of {', '.join(CHOICES)}; got {choice!r}.")
        if strength is not None and strength not in (1, 2, 3):
            raise LabelError(f"strength must be 1, 2 or 3 (or left out); got {strength!r}.")
        rationale = (rationale or "").strip() or None
        with self.transaction():
            pair = self._one("SELECT * FROM served_pairs WHERE id = ?", [served_pair_id])
            if pair is None:
                raise LabelError(f"Served pair {served_pair_id} does not exist; label refused.")
            if pair["annotator_id"] != annotator_id:
                raise LabelError(
                    f"Served pair {served_pair_id} was served to another annotator, "
                    f"not to annotator {annotator_id}; label refused."
                )
            existing = self._one("SELECT * FROM labels WHERE served_pair_id = ?", [served_pair_id])
            if existing:
                return existing, False
            if pair["status"] == "skipped":
                raise LabelError(f"Served pair {served_pair_id} was skipped; label refused.")
            now = time.time()
            self._insert("labels", {
                "served_pair_id": served_pair_id, "annotator_id": annotator_id, "choice": choice,
                "strength": strength, "rationale": rationale,
                "latency_ms": int(round((now - pair["served_at"]) * 1000)), "created_at": now,
            })
            self.db.execute(
                "UPDATE served_pairs SET status = 'labelled' WHERE id = ?", [served_pair_id]
            )
            label = self._one("SELECT * FROM labels WHERE served_pair_id = ?", [served_pair_id])
        return label, True

    def skip_served_pair(self, annotator_id: int, served_pair_id: int) -> dict[str, Any]:
        """Mark a served pair as skipped by its annotator (kept in the log, never labelled)."""
        with self.transaction():
            pair = self._one("SELECT * FROM served_pairs WHERE id = ?", [served_pair_id])
            if pair is None or pair["annotator_id"] != annotator_id:
                raise LabelError(
                    f"Served pair {served_pair_id} was not served to annotator {annotator_id}."
                )
            if pair["status"] == "served":
                self.db.execute(
                    "UPDATE served_pairs SET status = 'skipped', skipped_at = ? WHERE id = ?",
                    [time.time(), served_pair_id],
                )
        return self.served_pair(served_pair_id)

    def served_count(self, annotator_id: int) -> int:
        """Pairs served to this annotator so far (labelled, skipped or open)."""
        return int(self._one("SELECT count(*) AS n FROM served_pairs WHERE annotator_id = ?", [annotator_id])["n"])

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
            return int(self._one("SELECT count(*) AS n FROM labels")["n"])
        return int(self._one(
            "SELECT count(*) AS n FROM labels WHERE annotator_id = ?", [annotator_id]
        )["n"])

    def labels(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM labels ORDER BY id")

    def texts_after(self, prompt_id: int, response_id: int) -> tuple[list[str], int, int]:
        """Prompt and response texts added after the given ids, with the new highest ids
        (the trainer embeds them in the background as they arrive)."""
        prompts = self._all("SELECT id, text FROM prompts WHERE id > ? ORDER BY id", [prompt_id])
        responses = self._all("SELECT id, text FROM responses WHERE id > ? ORDER BY id", [response_id])
        texts = [r["text"] for r in prompts] + [r["text"] for r in responses]
        return (texts, prompts[-1]["id"] if prompts else prompt_id,
                responses[-1]["id"] if responses else response_id)

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
            SELECT l.id AS label_id, l.choice, sp.id AS served_pair_id, sp.annotator_group,
                   sp.arm_propensity, sp.left_base_response_id = sp.right_base_response_id AS same_base,
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

    def served_pair_log(self) -> list[dict[str, Any]]:
        """Every served pair with its texts, annotator, policy config and label (if any)."""
        return self._all(
            """
            SELECT sp.*, p.text AS prompt, p.task_type AS task_type,
                   lr.text AS left_text, rr.text AS right_text,
                   a.name AS annotator_name, a.objective AS annotator_objective,
                   a.covariates AS annotator_covariates,
                   a.excluded AS annotator_excluded, a.excluded_reason AS annotator_excluded_reason,
                   l.id AS label_id, l.choice AS choice, l.strength AS strength,
                   l.rationale AS rationale, l.latency_ms AS latency_ms,
                   l.created_at AS labelled_at
            FROM served_pairs sp
            JOIN prompts p ON p.id = sp.prompt_id
            JOIN responses lr ON lr.id = sp.left_response_id
            JOIN responses rr ON rr.id = sp.right_response_id
            JOIN annotators a ON a.id = sp.annotator_id
            LEFT JOIN labels l ON l.served_pair_id = sp.id
            ORDER BY sp.id
            """
        )

    # ------------------------------------------------------------------ quality control
    def serve_repeat(self, annotator: dict[str, Any], overlap: int,
                     lease_seconds: float = DEFAULT_LEASE_SECONDS, max_scan: int = 512) -> dict[str, Any] | None:
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
                where = f"{source}:{item['line']}"
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
                            f"{where}: field {side['field']!r}: this text is already response "
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
    "acquisition_score", "model_version", "seed",
)


# ---------------------------------------------------------------------- read-only analysis queries
# The dashboard reads 100,000-label collections on every refresh. These queries run on a
# read-only connection of their own (WAL readers never block the writer, and they never take
# the Store's lock that serving and labelling hold), return numbers rather than texts, and
# accept a ``Store`` or a database path.

@contextmanager
def read_connection(source: "Store | str | Path") -> Iterator[sqlite3.Connection]:
    """A read-only connection for a file database; the store's own for ``:memory:``."""
    path = source.path if isinstance(source, Store) else str(source)
    if path == ":memory:":
        if not isinstance(source, Store):
            raise ValueError("an in-memory database can only be read through its Store")
        with source._lock:
            yield source.db.conn
        return
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, check_same_thread=False)
    try:
        yield conn
    finally:
        conn.close()


def _case(column: str, values: list[str]) -> str:
    """SQL mapping a text column to the index of its value in ``values`` (-1 for NULL)."""
    whens = " ".join(f"WHEN ? THEN {i}" for i in range(len(values)))
    return f"CASE {column} {whens} ELSE -1 END" if values else "-1"


def read_served_pair_codes(source: "Store | str | Path") -> dict[str, Any]:
    """Every served pair as 13 numbers (id, status code, choice code, annotator id, group code,
    QC-kind code, prompt id, left and right response ids, policy version, arm propensity,
    label time or -1, latency or -1), with the lookups that decode them: ``groups``, ``kinds``,
    ``task_type`` (prompt id -> type), ``policy`` (version -> name) and ``annotators`` rows
    ``(id, name, excluded, excluded_reason)``."""
    with read_connection(source) as conn:
        have = {r[1] for r in conn.execute("PRAGMA table_info(served_pairs)")}
        have_a = {r[1] for r in conn.execute("PRAGMA table_info(annotators)")}
        qc = "sp.qc_kind" if "qc_kind" in have else "'regular'"
        found = conn.execute(f"SELECT DISTINCT annotator_group, {qc} FROM served_pairs sp").fetchall()
        groups = sorted({g for g, _ in found})
        kinds = sorted({k for _, k in found if k is not None})
        codes = conn.execute(f"""
            SELECT sp.id, CASE sp.status WHEN 'labelled' THEN 1 WHEN 'skipped' THEN 2 ELSE 0 END,
                   CASE l.choice WHEN 'left' THEN 0 WHEN 'right' THEN 1 WHEN 'tie' THEN 2
                                 WHEN 'both_bad' THEN 3 ELSE -1 END,
                   sp.annotator_id, {_case('sp.annotator_group', groups)}, {_case(qc, kinds)}, sp.prompt_id,
                   sp.left_response_id, sp.right_response_id, sp.policy_version, sp.arm_propensity,
                   coalesce(l.created_at, -1), coalesce(l.latency_ms, -1)
            FROM served_pairs sp LEFT JOIN labels l ON l.served_pair_id = sp.id ORDER BY sp.id""",
            groups + kinds).fetchall()
        return {
            "codes": codes, "groups": groups, "kinds": kinds,
            "task_type": dict(conn.execute("SELECT id, task_type FROM prompts").fetchall()),
            "policy": dict(conn.execute("SELECT version, name FROM policies").fetchall()),
            "annotators": conn.execute(
                f"SELECT id, name, {'excluded' if 'excluded' in have_a else '0'}, "
                f"{'excluded_reason' if 'excluded_reason' in have_a else 'NULL'} FROM annotators").fetchall(),
        }


def read_policy_configs(source: "Store | str | Path") -> list[str]:
    """The JSON config of every stored policy version."""
    with read_connection(source) as conn:
        return [r[0] for r in conn.execute("SELECT config FROM policies")]


def read_edit_flag_codes(source: "Store | str | Path", attributes: list[str], upto: int) -> list[tuple]:
    """``(served pair id, left code, right code)`` for pairs with id up to ``upto``: attribute i
    adds 3^i x (0 not randomised, 1 off, 2 on), so the flags travel as one number per side."""
    def code(side: str) -> str:
        terms = [f"(CASE json_extract(sp.{side}_edit_vector, '$.\"{a}\".on') WHEN 1 THEN 2 WHEN 0 THEN 1 "
                 f"ELSE 0 END) * {3 ** i}" for i, a in enumerate(attributes)]
        return " + ".join(terms) or "0"

    with read_connection(source) as conn:
        return conn.execute(f"SELECT sp.id, {code('left')}, {code('right')} FROM served_pairs sp "
                            "WHERE sp.id <= ? ORDER BY sp.id", [upto]).fetchall()
