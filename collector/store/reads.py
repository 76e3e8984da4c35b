"""Read-only analysis queries for the dashboard (numbers, not texts, on a connection of their own)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from acquisition.core.records import PolicySpec
from collector.store.connection import StoreBase, sqlite_uri

# ---------------------------------------------------------------------- read-only analysis queries
# The dashboard reads 100,000-label collections on every refresh. These queries run on a
# read-only connection of their own (WAL readers never block the writer, and they never take
# the Store's lock that serving and labelling hold), return numbers rather than texts, and
# accept a ``Store`` or a database path.

@contextmanager
def read_connection(source: "StoreBase | str | Path") -> Iterator[sqlite3.Connection]:
    """A read-only connection for a file database; the store's own for ``:memory:``."""
    path = source.path if isinstance(source, StoreBase) else str(source)
    if path == ":memory:":
        if not isinstance(source, StoreBase):
            raise ValueError("an in-memory database can only be read through its Store")
        with source._lock:
            yield source.db.conn
        return
    conn = sqlite3.connect(sqlite_uri(path, mode="ro"), uri=True, check_same_thread=False)
    try:
        yield conn
    finally:
        conn.close()


def _case(column: str, values: list[str]) -> str:
    """SQL mapping a text column to the index of its value in ``values`` (-1 for NULL)."""
    whens = " ".join(f"WHEN ? THEN {i}" for i in range(len(values)))
    return f"CASE {column} {whens} ELSE -1 END" if values else "-1"


def read_served_pair_codes(source: "StoreBase | str | Path") -> dict[str, Any]:
    """Every served pair as 18 numbers (id, status code, choice code, annotator id, group code,
    QC-kind code, prompt id, left and right response ids, policy version, arm propensity,
    label time or -1, latency or -1, shown-objective code or -1, policy-name code, family code
    or -1, arm code, recorded-marginals code or -1), with the lookups that decode them:
    ``groups``, ``kinds``, ``objectives``, ``policy_names``, ``families``, ``arms``,
    ``marginals`` (names and families as each pair recorded them; a quality-
    control pair's version is the QC settings', so no version is looked up in the policies
    table), ``task_type`` (prompt id -> type) and ``annotators`` rows
    ``(id, name, excluded, excluded_reason)``."""
    with read_connection(source) as conn:
        have = {r[1] for r in conn.execute("PRAGMA table_info(served_pairs)")}
        have_a = {r[1] for r in conn.execute("PRAGMA table_info(annotators)")}
        qc = "sp.qc_kind" if "qc_kind" in have else "'regular'"
        found = conn.execute(f"SELECT DISTINCT annotator_group, {qc} FROM served_pairs sp").fetchall()
        groups = sorted({g for g, _ in found})
        kinds = sorted({k for _, k in found if k is not None})
        shown = "sp.objective" if "objective" in have else "NULL"
        objectives = sorted(r[0] for r in conn.execute(f"SELECT DISTINCT {shown} FROM served_pairs sp") if r[0])
        family = "sp.family" if "family" in have else "NULL"
        names = sorted({r[0] for r in conn.execute("SELECT DISTINCT policy_name FROM served_pairs") if r[0]})
        families = sorted({r[0] for r in conn.execute(f"SELECT DISTINCT {family} FROM served_pairs sp") if r[0]})
        arms = sorted({r[0] for r in conn.execute("SELECT DISTINCT arm FROM served_pairs") if r[0]})
        marginal = "sp.edit_marginals" if "edit_marginals" in have else "NULL"
        marginals = sorted({r[0] for r in conn.execute(f"SELECT DISTINCT {marginal} FROM served_pairs sp") if r[0]})
        codes = conn.execute(f"""
            SELECT sp.id, CASE sp.status WHEN 'labelled' THEN 1 WHEN 'skipped' THEN 2 ELSE 0 END,
                   CASE l.choice WHEN 'left' THEN 0 WHEN 'right' THEN 1 WHEN 'tie' THEN 2
                                 WHEN 'both_bad' THEN 3 ELSE -1 END,
                   sp.annotator_id, {_case('sp.annotator_group', groups)}, {_case(qc, kinds)}, sp.prompt_id,
                   sp.left_response_id, sp.right_response_id, sp.policy_version, sp.arm_propensity,
                   coalesce(l.created_at, -1), coalesce(l.latency_ms, -1),
                   coalesce({_case(shown, objectives)}, -1), {_case('sp.policy_name', names)}, {_case(family, families)},
                   {_case('sp.arm', arms)}, {_case(marginal, marginals)}
            FROM served_pairs sp LEFT JOIN labels l ON l.served_pair_id = sp.id ORDER BY sp.id""",
            groups + kinds + objectives + names + families + arms + marginals).fetchall()
        return {
            "codes": codes, "groups": groups, "kinds": kinds, "objectives": objectives,
            "policy_names": names, "families": families, "arms": arms, "marginals": marginals,
            "task_type": dict(conn.execute("SELECT id, task_type FROM prompts").fetchall()),
            "annotators": conn.execute(
                f"SELECT id, name, {'excluded' if 'excluded' in have_a else '0'}, "
                f"{'excluded_reason' if 'excluded_reason' in have_a else 'NULL'} FROM annotators").fetchall(),
        }


def read_policy_configs(source: "StoreBase | str | Path") -> list[dict[str, Any]]:
    """The config of every stored policy version, parsed (``PolicySpec``)."""
    with read_connection(source) as conn:
        rows = conn.execute("SELECT id, name, version, config FROM policies").fetchall()
    return [dict(PolicySpec.from_row({"id": i, "name": n, "version": v, "config": c}).config) for i, n, v, c in rows]


def read_edit_flag_codes(source: "StoreBase | str | Path", attributes: list[str], upto: int) -> list[tuple]:
    """``(served pair id, left code, right code)`` for pairs with id up to ``upto``: attribute i
    adds 3^i x (0 not randomised or not applicable, 1 off, 2 on), so the flags travel as one
    number per side. The treatment received (``realised``) where it was recorded, else the
    switch (pairs served before it was), as ``acquisition.editors.realised_flag`` reads it."""
    def code(side: str) -> str:
        terms = []
        for i, a in enumerate(attributes):
            vector, realised, on = f"sp.{side}_edit_vector", f"'$.\"{a}\".realised'", f"'$.\"{a}\".on'"
            terms.append(f"(CASE json_type({vector}, {realised}) WHEN 'true' THEN 2 WHEN 'false' THEN 1 "
                         f"WHEN 'null' THEN 0 ELSE (CASE json_extract({vector}, {on}) WHEN 1 THEN 2 "
                         f"WHEN 0 THEN 1 ELSE 0 END) END) * {3 ** i}")
        return " + ".join(terms) or "0"

    with read_connection(source) as conn:
        return conn.execute(f"SELECT sp.id, {code('left')}, {code('right')} FROM served_pairs sp "
                            "WHERE sp.id <= ? ORDER BY sp.id", [upto]).fetchall()
