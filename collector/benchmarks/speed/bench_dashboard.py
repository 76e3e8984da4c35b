"""The researcher dashboard's first paint with 100,000 labels in the database (target: under 2 s).

The database is built quickly but holds rows exactly like real ones: a few thousand pairs
are served and labelled through the real ``Collector`` (real proposals, edited copies,
propensities), and the rest are further servings of those same proposals to the bench's
annotators, labelled by the simulated annotators' own choice model, with latencies, skips and
both-bad answers, inserted in one transaction.

Figures printed (medians over ``--repeats`` runs, Streamlit's cache cleared before each): the
data load, the progress and effects figures, an ``AppTest`` run of the page as a researcher
logged in through the store's login sees it (the first paint: counts and the Progress tab; the
run checks that the page shows the database's label count, not the login form), a refresh
from the cache, opening each other tab; then an
annotator's next-pair p95 in the same process, idle and while the dashboard reloads in a loop.
Targets: first paint under 2 s; next pair p95 under 50 ms during refreshes. Exits 1 on a miss.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.core.records import EditVector
from collector.app import REPOSITORY
from collector.benchmarks.speed.targets import Targets
from collector.jobs.simulate import SimulatedAnnotatorConfig, choose, simulate
from collector.store import Store
from collector.store.create import init_db

GROUPS = ["experts", "crowd", "students"]
TRUTH = SimulatedAnnotatorConfig(group_effects={"crowd": {"emoji": 1.0}, "experts": {"verbosity": -0.6}})
SERVED_COLUMNS = [
    "annotator_id", "annotator_group", "prompt_id", "left_response_id", "right_response_id",
    "left_base_response_id", "right_base_response_id", "left_edit_vector", "right_edit_vector",
    "position_swapped", "policy_id", "policy_name", "policy_version", "arm", "propensity_score",
    "arm_propensity", "acquisition_score", "model_version", "seed", "served_at",
    "lease_expires_at", "status", "skipped_at",
]


def _on(edit_vector: EditVector) -> set[str]:
    return set(EditVector.parse(edit_vector).on_set())


def build_database(path: Path, labels: int = 100_000, served_real: int = 3000, annotators: int = 60,
                   days: float = 14.0, seed: int = 0) -> dict[str, int]:
    """A demo database with ``labels`` labels; returns ``Store.counts()``."""
    init_db(path, demo=True)
    store = Store(path)
    try:
        with store.transaction():  # one transaction: the real serving path, without a commit per pair
            simulate(store, labels=served_real, annotators=annotators, groups=GROUPS, seed=seed, config=TRUTH)
        templates = [r for r in store.served_pair_log()]
        people = [a for a in store.annotators() if a["is_simulated"]]
        quality = store.pool_snapshot().response_quality
        rng = np.random.default_rng(seed)
        extra = labels - len(store.labels())
        served_rows: list[dict[str, Any]] = []
        label_rows: list[list[Any]] = []
        while len(label_rows) < extra:  # ~3% of servings are skipped, ~2% answered both-bad
            template = templates[int(rng.integers(len(templates)))]
            person = people[int(rng.integers(len(people)))]
            row = {c: template[c].to_json() if isinstance(template[c], EditVector) else template[c]
                   for c in SERVED_COLUMNS}  # the stored form: edit vectors as their JSON
            row.update(annotator_id=person["id"], annotator_group=person["group_name"],
                       seed=int(rng.integers(2**31)), status="labelled", skipped_at=None)
            latency_s = float(rng.lognormal(np.log(9.0), 0.6))
            if rng.random() < 0.03:
                row.update(status="skipped")
            elif rng.random() < 0.02:
                label_rows.append([len(served_rows), person["id"], "both_bad", None, latency_s])
            else:
                choice, strength = choose(
                    float(quality[template["left_base_response_id"]] or 0.0),
                    float(quality[template["right_base_response_id"]] or 0.0),
                    _on(template["left_edit_vector"]), _on(template["right_edit_vector"]), TRUTH, rng,
                    group=person["group_name"],
                )
                label_rows.append([len(served_rows), person["id"], choice, strength, latency_s])
            row["latency_s"] = latency_s
            served_rows.append(row)
        # the real servings opened the collection `days` ago; the rest follow in id order until now
        shift = days * 86400
        begin = max(t["served_at"] for t in templates) - shift + 60
        served_at = np.sort(begin + rng.random(len(served_rows)) * (time.time() - begin - 60))
        for row, t in zip(served_rows, served_at):
            row.update(served_at=float(t), lease_expires_at=float(t) + 1800)
            if row["status"] == "skipped":
                row["skipped_at"] = float(t) + row["latency_s"]
        conn = store.db.conn
        with store.transaction():  # bench fixture: a direct bulk path, same columns as Store writes
            conn.execute("UPDATE served_pairs SET served_at = served_at - ?, lease_expires_at = "
                         "lease_expires_at - ?, skipped_at = skipped_at - ?", [shift] * 3)
            conn.execute("UPDATE labels SET created_at = created_at - ?", [shift])
            first_id = int(conn.execute("SELECT coalesce(max(id), 0) FROM served_pairs").fetchone()[0]) + 1
            conn.executemany(
                f"INSERT INTO served_pairs (id, {', '.join(SERVED_COLUMNS)}) "
                f"VALUES (?, {', '.join('?' for _ in SERVED_COLUMNS)})",
                [(first_id + i, *(r[c] for c in SERVED_COLUMNS)) for i, r in enumerate(served_rows)],
            )
            conn.executemany(
                "INSERT INTO labels (served_pair_id, annotator_id, choice, strength, rationale, latency_ms, "
                "created_at) VALUES (?, ?, ?, ?, NULL, ?, ?)",
                [(first_id + i, a, c, s, int(lat * 1000), served_rows[i]["served_at"] + lat)
                 for i, a, c, s, lat in label_rows],
            )
        return store.counts()
    finally:
        store.close()


PAGE = REPOSITORY / "collector" / "app" / "pages" / "dashboard.py"
TABS = ["Effects", "Balance and overlap", "Model", "Agreement", "Quality"]


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def researcher_token(db: Path) -> str:
    """A researcher account and a logged-in session, as the login form makes one."""
    store = Store(db)
    try:
        if not store.has_researchers():
            store.add_researcher("bench-researcher", "bench-password-123")
        return store.login("bench-researcher", "bench-password-123", client="bench")
    finally:
        store.close()


def first_paint(db: Path, repeats: int, targets: Targets) -> None:
    """Medians over ``repeats`` runs, each with Streamlit's data cache cleared (a cold first paint),
    of the page a logged-in researcher sees; a run that painted anything else (the login form)
    is a miss, not a figure."""
    os.environ.update(DECONFOUND_DB=str(db), DECONFOUND_WORKER="0")
    store = Store(db)
    labels = store.label_count()
    store.close()
    token = researcher_token(db)
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from collector.app import panels as dashboard

    # the panels' cached loaders, called here outside a page, warn on every call that there is no
    # Streamlit runtime: dozens of lines that hid the figures
    for name in ("streamlit.runtime.caching.cache_data_api", "streamlit.runtime.scriptrunner_utils.script_run_context"):
        logging.getLogger(name).setLevel(logging.ERROR)
    figures: dict[str, list[float]] = {}

    def note(name: str, wall: float, cpu: float) -> None:
        figures.setdefault(name, []).append(wall)
        figures.setdefault(name + " (CPU)", []).append(cpu)

    for _ in range(repeats):
        _, wall, cpu = _timed(lambda: dashboard.load_pairs(db, flags=False))
        note("load the served-pair log (first paint)", wall, cpu)
        pairs, wall, cpu = _timed(lambda: dashboard.load_pairs(db))
        note("load it with the attribute flags", wall, cpu)
        _, wall, cpu = _timed(lambda: (dashboard.progress_summary(pairs), dashboard.build_progress_figure(pairs)))
        note("progress figure", wall, cpu)
        _, wall, cpu = _timed(lambda: dashboard.build_effects_figure(dashboard.effects_table(pairs)))
        note("effects table + figure", wall, cpu)
        st.cache_data.clear()
        st.cache_resource.clear()
        page = AppTest.from_file(str(PAGE), default_timeout=120)
        page.session_state["researcher_token"] = token  # logged in, as after the login form
        _, wall, cpu = _timed(page.run)
        assert not page.exception, page.exception
        shown = [m.value for m in page.metric if m.label == "Labels"]
        if shown != [f"{labels:,}"]:
            print(f"  the page painted is not the dashboard of {labels:,} labels (Labels metric: {shown})")
            targets.happened("first paint showed the dashboard", 0, "paints")
            return
        note("first paint: AppTest run of the page (Progress tab)", wall, cpu)
        _, wall, cpu = _timed(page.run)
        note("refresh with the data cached", wall, cpu)
        for tab in TABS:
            page.session_state["dashboard_tab"] = tab
            _, wall, cpu = _timed(page.run)
            assert not page.exception, page.exception
            note(f"open the {tab} tab", wall, cpu)
    targets.happened("first paints that showed the logged-in dashboard's label count", repeats, "paints")
    targets.at_most("first paint of the logged-in dashboard (median)",
                    statistics.median(figures["first paint: AppTest run of the page (Progress tab)"]), 2, "s")
    width = max(map(len, figures))
    print(f"dashboard, {repeats} runs (median wall time; CPU time of this process beside it):")
    for name, values in figures.items():
        if not name.endswith("(CPU)"):
            cpu = statistics.median(figures[name + " (CPU)"])
            print(f"  {name:<{width}}  {statistics.median(values):6.2f} s   (CPU {cpu:.2f} s)")


def next_pair_during_refresh(db: Path, targets: Targets, pairs: int = 300) -> None:
    """An annotator's next-pair time in the app's process, idle and while the dashboard reloads
    the 100,000-label log and re-estimates every effect in a loop (the heaviest refresh)."""
    from collector.app import panels as dashboard
    from collector.benchmarks.speed.bench_serving import latencies_idle_and_busy, pct
    from collector.serving.service import Collector

    store = Store(db)
    annotator, _ = store.add_annotator("bench-annotator", group="experts")
    collector = Collector(store, seed=0)
    collector.active_policy()

    idle, busy, refreshes = latencies_idle_and_busy(
        collector, annotator["id"], pairs, lambda: dashboard.effects_table(dashboard.load_pairs(db)))
    store.close()
    print(f"  next pair p95 idle {pct(idle, .95):.2f} ms, during dashboard refreshes {pct(busy, .95):.2f} ms "
          f"(medians {statistics.median(idle):.2f} / {statistics.median(busy):.2f} ms; "
          f"{refreshes} full refreshes meanwhile)")
    targets.happened("dashboard refreshes while the annotator was served", refreshes, "refreshes")
    targets.at_most("next pair p95 during dashboard refreshes", pct(busy, .95), 50, "ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--labels", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--db", help="reuse (or create) this database instead of a temporary one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "bench.db"
        if not db.exists():
            t0 = time.perf_counter()
            counts = build_database(db, labels=args.labels)
            print(f"database: {counts['labels']:,} labels, {counts['served_pairs']:,} served pairs "
                  f"built in {time.perf_counter() - t0:.1f} s")
        targets = Targets("dashboard")
        first_paint(db, args.repeats, targets)
        next_pair_during_refresh(db, targets)
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
