"""The whole data API of Deconfound: one class, ``Store``, over ``sqlite_utils.Database``.

Pages, policies and the CLI never write SQL; they call a method here. Every write is
one ``BEGIN IMMEDIATE`` transaction, so a crash mid-write leaves nothing half-done and
two processes (the app and ``python -m collector simulate``) can share one file.

sqlite-utils' own ``insert``/``upsert`` commit through ``with conn:``, which would end an
enclosing transaction early, so writes that must be atomic use ``StoreBase._insert``.

``Store`` is assembled from parts, one file each: ``connection`` (connection, transactions,
schema, meta), ``pool_tables`` (prompts, responses, imported preferences), ``people``
(annotators, policies), ``served_pairs`` (served pairs, variants, labels) and ``qc_tables``
(repeats, gold items, exclusions), ``researchers`` (accounts, sessions, throttled logins, the
audit log); ``reads`` holds the dashboard's read-only queries and
``create`` makes a new database (``init_db``, the demo pool).
"""

from collector.store.connection import (
    ADDED_COLUMNS,
    ADDED_INDEXES,
    CHOICES,
    DEFAULT_LEASE_SECONDS,
    SCHEMA_VERSION,
    SideRecord,
    StoreBase,
    edit_key,
    token_hash,
)
from collector.store.people import PeopleMixin
from collector.store.pool_tables import PoolTablesMixin
from collector.store.qc_tables import QCTablesMixin
from collector.store.reads import read_connection, read_edit_flag_codes, read_policy_configs, read_served_pair_codes
from collector.store.researchers import ResearchersMixin
from collector.store.served_pairs import ServedPairsMixin


class Store(PoolTablesMixin, QCTablesMixin, ServedPairsMixin, PeopleMixin, ResearchersMixin, StoreBase):
    """Deconfound's database: pool, annotators, policies, served pairs and labels.

    Args:
        path: SQLite file, or ``":memory:"`` for tests.
    """


__all__ = [
    "ADDED_COLUMNS", "ADDED_INDEXES", "CHOICES", "DEFAULT_LEASE_SECONDS", "SCHEMA_VERSION", "SideRecord", "Store",
    "StoreBase", "edit_key", "read_connection", "read_edit_flag_codes", "read_policy_configs",
    "read_served_pair_codes", "token_hash",
]
