"""The storage core: constants, text keys, the pool snapshot, and the connection, transaction,
schema and meta plumbing every part of ``Store`` builds on."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if "pandas" not in sys.modules:
    # sqlite-utils imports pandas if it can, only to convert pandas values it is asked to insert
    # (the store inserts plain values): half a second of the annotator page's first paint
    sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` raises ImportError
    try:
        import sqlite_utils
    finally:
        del sys.modules["pandas"]
else:
    import sqlite_utils

from acquisition.core.errors import DeconfoundError, StorageError
from acquisition.core.records import EditVector

if TYPE_CHECKING:
    from models.checkpoints import Checkpoints

# 2: served pairs gain the status 'expired' (replaced after their lease ran out), at most one
# 'served' (open) pair per annotator is a unique index, and labels record when the pair was shown
# 5: served pairs record each randomised attribute's marginal propensity (edit_marginals),
# generated responses how they were generated, and a model judge's labels its judgement
# 7: served pairs record the family they are filed under (``family``)
# 8: an imported line may hold several comparisons (``imported_preferences.comparison``)
SCHEMA_VERSION = 8
CHOICES = ("left", "right", "tie", "both_bad")
WINNERS = ("left", "right")  # the choices a strength may go with
DEFAULT_LEASE_SECONDS = 30 * 60
MAX_RATIONALE_CHARS = 2000

# Columns added after a table was first created: {table: {column: "TYPE [DEFAULT ...]"}}.
# `_ensure_schema` adds whichever are missing, so databases made by older code keep working.
# New tables go straight into `_create_tables` (CREATE ... IF NOT EXISTS).
ADDED_COLUMNS: dict[str, dict[str, str]] = {
    # quality control (collector/serving/quality_control.py): a served pair is 'regular', a 'repeat' of an earlier
    # regular pair (overlap k), a 'gold' pair or an 'attention' check; qc_expected is the
    # answer a careful annotator gives as displayed; overlap_done marks a regular pair with k labels
    "served_pairs": {
        "qc_kind": "TEXT NOT NULL DEFAULT 'regular'",
        "origin_served_pair_id": "INTEGER REFERENCES served_pairs(id)",
        "gold_item_id": "INTEGER REFERENCES gold_items(id)",
        "qc_expected": "TEXT",
        "overlap_done": "INTEGER NOT NULL DEFAULT 0",
        # the study settings version and the objective text the pair was shown with
        "study_version": "INTEGER",
        "objective": "TEXT",
        "objective_propensity": "REAL",  # its probability when randomised, 1 when fixed
        # {attribute: P(on for a side)} of the attributes the policy randomised (effects export)
        "edit_marginals": "TEXT",
        # what the pair is filed under (acquisition.core.records.FAMILIES): the proposer's, as drawn
        "family": "TEXT",
    },
    # an excluded annotator's labels stay here, flagged, and leave training and the TRL export
    # external_id: a crowd platform's participant id ("prolific:<PROLIFIC_PID>"), never shown as the name
    "annotators": {"excluded": "INTEGER NOT NULL DEFAULT 0", "excluded_reason": "TEXT", "excluded_at": "REAL",
                   "external_id": "TEXT"},
    # 'gold' for the responses of gold pairs, which policies never see (NULL: the pool)
    # generation: how a generated response was written, JSON {model, backend, decoding, sample, seed}
    "responses": {"qc_kind": "TEXT", "generation": "TEXT"},
    # a multi-turn request's turns as JSON [{role, content}] (NULL: one user turn)
    "prompts": {"turns": "TEXT"},
    # server time the page showed the pair; latency_ms runs from it to the answer
    # judgement: a model judge's label, JSON {model, backend, template, raw, attempts, decoding}
    "labels": {"shown_at": "REAL", "judgement": "TEXT"},
    # who judged an imported preference and how, as the file said (JSON: Arena's judge,
    # language, tstamp): the covariates of the imported "annotator"
    "imported_preferences": {"covariates": "TEXT"},
}
# Data fixes that must run before ADDED_INDEXES (idempotent): older databases could hold several
# open pairs for one annotator; all but the newest become 'expired' so the unique index holds.
MIGRATIONS: tuple[str, ...] = (
    "UPDATE served_pairs SET status = 'expired' WHERE status = 'served' AND id NOT IN "
    "(SELECT max(id) FROM served_pairs WHERE status = 'served' GROUP BY annotator_id)",
)
# Data fixes run once, when a database older than their schema version is opened.
VERSIONED_MIGRATIONS: dict[int, tuple[str, ...]] = {
    7: (
        # pairs served before the family was recorded: filed by their kind, policy and arm as served
        "UPDATE served_pairs SET family = CASE WHEN qc_kind IN ('gold', 'attention') THEN 'quality_control' ELSE "
        "(CASE (CASE WHEN policy_name = 'mixture' AND instr(arm, ':') > 0 THEN substr(arm, 1, instr(arm, ':') - 1) "
        "ELSE policy_name END) "
        "WHEN 'observational' THEN 'observational' WHEN 'randomised_attributes' THEN 'randomised_attributes' "
        "WHEN 'counterfactual_pairs' THEN 'counterfactual' WHEN 'overlap_targeting' THEN 'overlap_targeting' "
        "WHEN 'active' THEN 'active' WHEN 'assignment_randomisation' THEN "
        "(CASE WHEN arm LIKE '%pool_order' THEN 'observational' ELSE 'randomised_assignment' END) "
        "ELSE NULL END) END WHERE family IS NULL",
    ),
    8: (
        # one line, several comparisons (PKU-SafeRLHF's better and safer, a ranking's pairs): the
        # table is rebuilt with the comparison in its unique key; every row keeps its id
        "CREATE TABLE imported_preferences_v8 ("
        "id INTEGER PRIMARY KEY, prompt_id INTEGER NOT NULL REFERENCES prompts(id), "
        "chosen_response_id INTEGER NOT NULL REFERENCES responses(id), "
        "rejected_response_id INTEGER NOT NULL REFERENCES responses(id), "
        "outcome TEXT NOT NULL, tie INTEGER NOT NULL, margin REAL, source TEXT NOT NULL, format TEXT NOT NULL, "
        "file_sha256 TEXT NOT NULL, external_id TEXT, line INTEGER NOT NULL, created_at REAL NOT NULL, "
        "covariates TEXT, comparison INTEGER NOT NULL DEFAULT 0, UNIQUE (file_sha256, line, comparison))",
        "INSERT INTO imported_preferences_v8 (id, prompt_id, chosen_response_id, rejected_response_id, outcome, tie, "
        "margin, source, format, file_sha256, external_id, line, created_at, covariates, comparison) "
        "SELECT id, prompt_id, chosen_response_id, rejected_response_id, outcome, tie, margin, source, format, "
        "file_sha256, external_id, line, created_at, covariates, 0 FROM imported_preferences",
        "DROP TABLE imported_preferences",
        "ALTER TABLE imported_preferences_v8 RENAME TO imported_preferences",
    ),
}
# Indexes on added columns, created after the columns exist.
ADDED_INDEXES: tuple[str, ...] = (
    "CREATE UNIQUE INDEX IF NOT EXISTS annotators_external ON annotators(external_id) WHERE external_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS served_pairs_origin ON served_pairs(origin_served_pair_id, annotator_id) "
    "WHERE origin_served_pair_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS served_pairs_gold ON served_pairs(gold_item_id, annotator_id) "
    "WHERE gold_item_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS served_pairs_overlap_open ON served_pairs(id) "
    "WHERE qc_kind = 'regular' AND status = 'labelled' AND overlap_done = 0",
    # per-annotator quality reads these indexes only, not the wide rows
    "CREATE INDEX IF NOT EXISTS served_pairs_quality ON served_pairs(annotator_id, qc_kind, status, qc_expected)",
    "CREATE INDEX IF NOT EXISTS labels_annotator_latency ON labels(annotator_id, latency_ms)",
    # at most one open pair per annotator, whatever the concurrency (two tabs, two processes)
    "CREATE UNIQUE INDEX IF NOT EXISTS served_pairs_one_open ON served_pairs(annotator_id) "
    "WHERE status = 'served'",
)

LOCK_TIMEOUT_SECONDS = float(os.environ.get("DECONFOUND_LOCK_TIMEOUT", "10"))  # bounded, reported wait

_STORAGE_PROBLEMS = (
    ("database or disk is full", "the disk holding the database is full"),
    ("readonly database", "the database is read-only"),
    ("database is locked", f"the database is locked by another process (waited {LOCK_TIMEOUT_SECONDS:g} s; "
                           "set DECONFOUND_LOCK_TIMEOUT to wait longer)"),
    ("disk i/o error", "the disk holding the database reported an I/O error"),
    ("unable to open database", "the database file cannot be opened (SQLite must be able to create its journal "
                                 "beside it: is the folder writable?)"),
    ("file is not a database", "the file is not a SQLite database"),
    ("malformed", "the database file is damaged"),
)


def storage_error(exc: sqlite3.Error, path: str, writing: bool) -> StorageError:
    """One readable sentence for a SQLite failure (the raw message stays as the cause)."""
    text = str(exc).lower()
    why = next((reason for key, reason in _STORAGE_PROBLEMS if key in text), f"SQLite said: {exc}")
    action = "Nothing was saved" if writing else "It could not be read"
    return StorageError(f"{path}: {why}. {action}; try again once this is fixed.")



def token_hash(token: str) -> str:
    return hashlib.sha256(("deconfound-token:" + token).encode("utf-8")).hexdigest()


# columns that hold an edit vector's JSON: every row that leaves the store has them as ``EditVector``
EDIT_VECTOR_COLUMNS = frozenset({"left_edit_vector", "right_edit_vector", "edit_vector"})


def edit_key(edit_vector: dict[str, Any]) -> str:
    """Canonical string of the attributes switched on (with editor and seed), used to reuse variants.

    An LLM rewrite (editor ``llm:<model>``) changes the text whichever way it switches its
    attribute, so its entry is kept when it is off too (a rewrite-of-rewrite is a variant)."""
    on = {a: {k: e[k] for k in ("on", "editor", "seed") if k in e} for a, e in sorted(edit_vector.items())
          if e.get("on") or str(e.get("editor", "")).startswith("llm:")}
    return json.dumps(on, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class SideRecord:
    """One side of a pair as the serving layer hands it to storage."""

    base_response_id: int
    edit_vector: dict[str, Any]
    text: str
    manipulation_check: dict[str, bool]
    response_id: int | None = None  # a stored variant of the base (an LLM rewrite), served as it is


SQLITE_HEADER = b"SQLite format 3\x00"


def sqlite_uri(path: str | Path, **params: str) -> str:
    """A ``file:`` URI for ``path`` with ``#``, ``?`` and ``%`` escaped, so a path holding them
    opens that file and no other."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return "file:" + quote(str(Path(path).resolve())) + (f"?{query}" if query else "")


def check_database_path(path: str | Path, create: bool) -> None:
    """Refuse, with one sentence, a path that cannot be a Deconfound database: a folder, a file
    that is not SQLite, a missing file (unless ``create``), a missing parent folder."""
    p = Path(path)
    if p.is_dir():
        raise StorageError(f"{p}: is a folder; give the path of a database file (e.g. {p / 'deconfound.db'}).")
    if not p.exists():
        if not create:
            raise StorageError(f"{p}: no database here; create one with `deconfound init --db {p}` "
                               "(or check the path).")
        return
    if not p.is_file():  # a FIFO or a device would block the read below, or feed it forever
        raise StorageError(f"{p}: is not a regular file (a pipe, socket or device); give the path of a database file.")
    try:
        with open(p, "rb") as handle:
            header = handle.read(16)
    except OSError as exc:
        raise StorageError(f"{p}: cannot be read ({exc.strerror or exc}).") from None
    if header and header != SQLITE_HEADER:
        raise StorageError(f"{p}: is not a SQLite database (give the path of a Deconfound database).")


def _is_read(sql: str) -> bool:
    """A statement that only reads (``SELECT`` or ``WITH``, no ``RETURNING``): it may run on a
    thread's read connection."""
    head = sql.lstrip()[:6].upper()
    return (head == "SELECT" or head.startswith("WITH")) and "RETURNING" not in sql.upper()


class _ReadConnection(sqlite3.Connection):
    """A thread's read-only connection (a subclass only so the store can hold it weakly: it is
    closed with its thread, or with the store)."""


class StoreBase:
    """Connection, transactions, schema and meta; the mixins in this package add the rest.

    Args:
        path: SQLite file, or ``":memory:"`` for tests.
        create: create the file (and its folder) when it is missing; ``False`` refuses a missing
            file, as every CLI command but ``init`` does.
        readonly: open read-only (commands that only read; a read-only database or folder).

    Raises:
        StorageError: the path is a folder, not SQLite, missing (unless ``create``), another
            application's SQLite file, or too new for this code.
    """

    def __init__(self, path: str | Path = ":memory:", *, create: bool = True, readonly: bool = False) -> None:
        self.path = str(path)
        self.readonly = readonly
        if self.path != ":memory:":
            check_database_path(self.path, create and not readonly)
            if not Path(self.path).exists():
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        target = sqlite_uri(self.path, mode="ro") if readonly and self.path != ":memory:" else self.path
        try:
            conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False,
                                   timeout=LOCK_TIMEOUT_SECONDS, uri=target.startswith("file:"))
            self.db = sqlite_utils.Database(conn)
            self._lock = threading.RLock()
            self._local = threading.local()  # this thread's read connection (``_reader``)
            self._readers: weakref.WeakSet[_ReadConnection] = weakref.WeakSet()
            self._check_application()
            if self.path != ":memory:" and not readonly:
                self.db.enable_wal()
            self.db.execute("PRAGMA foreign_keys = ON")
            # every acknowledged write survives power loss: WAL + FULL syncs the log at each commit
            self.db.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, writing=not readonly) from exc
        if readonly:
            self._check_schema_current()
        else:
            self._ensure_schema()

    def _check_application(self) -> None:
        """An existing file must be Deconfound's: a ``meta`` table with a schema version, or no
        tables at all (a new, empty database)."""
        tables = set(self.db.table_names())
        if not tables or self.path == ":memory:":
            return
        if "meta" not in tables or self.get_meta("schema_version") is None:
            shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
            raise StorageError(f"{self.path}: is a SQLite database, but not Deconfound's (its tables: {shown}); "
                               "give the path of a Deconfound database, or `init` a new one elsewhere.")

    def _check_schema_current(self) -> None:
        found = int(self.get_meta("schema_version", "0") or 0) if "meta" in set(self.db.table_names()) else 0
        if found > SCHEMA_VERSION:
            raise DeconfoundError(f"{self.path}: database schema version {found} is newer than this code's "
                                  f"({SCHEMA_VERSION}); upgrade Deconfound.")
        if found < SCHEMA_VERSION:
            raise StorageError(f"{self.path}: the database needs an upgrade (schema {found} -> {SCHEMA_VERSION}), "
                               f"which a read-only open cannot do; run `deconfound init --db {self.path}` once with "
                               "write access (it keeps everything and adds what is missing).")

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error.

        SQLite failures (disk full, read-only, locked) leave as ``StorageError`` with one
        readable sentence; nothing of the transaction is kept."""
        with self._lock:
            conn = self.db.conn
            if conn.in_transaction:  # nested: join the outer transaction
                yield
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise storage_error(exc, self.path, writing=True) from exc
            try:
                yield
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # SQLite rolled back itself (e.g. after SQLITE_FULL)
                if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
                    raise storage_error(exc, self.path, writing=True) from exc
                raise

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        cols = ", ".join(f"[{c}]" for c in row)
        marks = ", ".join("?" for _ in row)
        values = [v.to_json() if isinstance(v, EditVector) else v for v in row.values()]  # serialised once, here
        cur = self.db.execute(f"INSERT INTO [{table}] ({cols}) VALUES ({marks})", values)
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    def _scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        """The single value of an aggregate query (``SELECT count(*) ...``)."""
        row = self._one(sql, params)
        assert row is not None, "an aggregate query returns one row"
        return next(iter(row.values()))

    def _reader(self) -> sqlite3.Connection | None:
        """This thread's own read-only connection, so that reads run beside the writer and each
        other on every core (WAL: each read sees the last commit); ``None`` where a read must
        use the main connection: in memory, or in a thread that holds the store's lock (inside a
        transaction, a read sees that transaction's own writes)."""
        if self.path == ":memory:" or self._lock._is_owned():  # type: ignore[attr-defined]
            return None
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(sqlite_uri(self.path, mode="ro"), uri=True, check_same_thread=False,
                                       timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None, factory=_ReadConnection)
                conn.execute("PRAGMA query_only = ON")
            except sqlite3.Error:
                return None  # e.g. no shared-memory file yet on a read-only folder: the main one reads
            self._local.conn = conn
            self._readers.add(conn)
        return conn

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read of this thread inside the block sees one state of the database (a read
        transaction on its read connection: WAL keeps that state while writers go on, and
        nobody waits for it). An export that reads the log in batches and a card that counts
        it then describe the same labels. In memory, or where the main connection must read,
        the reads go on under the store's lock as they do outside."""
        reader = self._reader()
        if reader is None or reader.in_transaction:  # nothing to pin, or pinned by an outer block
            yield
            return
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT 1 FROM meta LIMIT 1").fetchall()  # the snapshot starts at the first read
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, writing=False) from exc
        try:
            yield
        finally:
            reader.execute("COMMIT")

    def _read(self, sql: str, params: list[Any]) -> tuple[list[str] | None, list[tuple[Any, ...]]]:
        """Column names and rows of one read, on this thread's read connection or, where it must,
        on the main one under the lock."""
        reader = self._reader()
        if reader is not None:
            try:
                cursor = reader.execute(sql, params)
                return ([d[0] for d in cursor.description] if cursor.description else None), cursor.fetchall()
            except sqlite3.Error as exc:
                raise storage_error(exc, self.path, writing=False) from exc
        with self._lock:
            try:
                # the connection itself: sqlite-utils' query() wraps each read in a SAVEPOINT and
                # RELEASE, two more statements per read on the serving path
                cursor = self.db.conn.execute(sql, params)
                return ([d[0] for d in cursor.description] if cursor.description else None), cursor.fetchall()
            except sqlite3.Error as exc:
                if self.db.conn.in_transaction:
                    raise  # the enclosing transaction reports it
                raise storage_error(exc, self.path, writing=False) from exc

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        if not _is_read(sql):
            return self._write_all(sql, params)
        keys, tuples = self._read(sql, list(params))
        if keys is None:
            return []
        rows = [dict(zip(keys, row)) for row in tuples]
        vectors = [k for k in keys if k in EDIT_VECTOR_COLUMNS]
        for row in rows if vectors else ():  # typed where they leave the store: parsed here, once
            for k in vectors:
                row[k] = EditVector.parse(row[k])
        return rows

    def _write_all(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """A statement that writes (``UPDATE ... RETURNING``), on the main connection."""
        with self._lock:
            try:
                cursor = self.db.conn.execute(sql, list(params))
                if cursor.description is None:
                    return []
                keys = [d[0] for d in cursor.description]
                rows = [dict(zip(keys, row)) for row in cursor.fetchall()]
            except sqlite3.Error as exc:
                if self.db.conn.in_transaction:
                    raise  # the enclosing transaction reports it
                raise storage_error(exc, self.path, writing=False) from exc
        vectors = [k for k in keys if k in EDIT_VECTOR_COLUMNS]
        for row in rows if vectors else ():  # typed where they leave the store: parsed here, once
            for k in vectors:
                row[k] = EditVector.parse(row[k])
        return rows

    def _tuples(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """``_all`` as plain tuples: half the cost for the large reads (the pool snapshot) whose
        columns the caller names."""
        if not _is_read(sql):
            with self._lock:
                return self.db.conn.execute(sql, list(params)).fetchall()
        return self._read(sql, list(params))[1]

    def close(self) -> None:
        for reader in list(self._readers):
            reader.close()
        self.db.conn.close()

    def _ensure_schema(self) -> None:
        """Create missing tables, indexes and columns; every step is idempotent, so an older
        database is brought up to date in place and nothing in it is lost."""
        with self._lock:
            found = SCHEMA_VERSION  # a new database needs no data fix
            if "meta" in set(self.db.table_names()):
                found = int(self.get_meta("schema_version", "0") or 0)
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
                fixes = [f for version, fs in sorted(VERSIONED_MIGRATIONS.items()) if found < version for f in fs]
                for statement in (*MIGRATIONS, *fixes, *ADDED_INDEXES):
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
            comparison INTEGER NOT NULL DEFAULT 0,
            UNIQUE (file_sha256, line, comparison));
        CREATE TABLE IF NOT EXISTS gold_items (
            id INTEGER PRIMARY KEY, prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            first_response_id INTEGER NOT NULL REFERENCES responses(id),
            second_response_id INTEGER NOT NULL REFERENCES responses(id),
            expected TEXT NOT NULL, note TEXT, source TEXT, line INTEGER, created_at REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS researchers (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
            created_at REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS researcher_sessions (
            token_hash TEXT PRIMARY KEY, researcher TEXT NOT NULL, client TEXT,
            created_at REAL NOT NULL, expires_at REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS login_attempts (
            id INTEGER PRIMARY KEY, researcher TEXT NOT NULL, client TEXT NOT NULL,
            outcome TEXT NOT NULL, at REAL NOT NULL);
        CREATE INDEX IF NOT EXISTS login_attempts_researcher ON login_attempts(researcher, at);
        CREATE INDEX IF NOT EXISTS login_attempts_client ON login_attempts(client, at);
        CREATE TABLE IF NOT EXISTS suspicion_probes (
            id INTEGER PRIMARY KEY, annotator_id INTEGER NOT NULL UNIQUE REFERENCES annotators(id),
            study_version INTEGER, labels_before INTEGER NOT NULL, looked_edited TEXT NOT NULL,
            what TEXT, answered_at REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS audit_log (
            id INTEGER PRIMARY KEY, at REAL NOT NULL, researcher TEXT NOT NULL, action TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}');
        """
        for statement in ddl.split(";"):
            if statement.strip():
                self.db.execute(statement)

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", [key])
        return row["value"] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.set_metas({key: value})

    def set_metas(self, values: dict[str, str]) -> None:
        """Set several settings in one transaction (a reader sees all of them or none)."""
        with self.transaction():
            self.db.conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items()))

    def checkpoints(self) -> Checkpoints:
        """Where this database's models live (its ``checkpoint_dir`` setting, else beside it)."""
        from models.checkpoints import Checkpoints

        return Checkpoints.for_database(self.path, self.get_meta("checkpoint_dir"))

    @property
    def pool_version(self) -> int:
        return int(self.get_meta("pool_version", "0") or 0)
