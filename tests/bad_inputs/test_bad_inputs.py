"""The bad-input corpus: every case is something a user or a hostile tester really typed or
uploaded. Each must give a clear error (an ``error:`` line for the CLI, a ``DeconfoundError``
for the Python API; never a traceback), name what is wrong and where (file, line, field) when
there is a where, and leave every table's row count, and the files around, unchanged.

A case is ``(id, setup, run, expected)``: ``setup(tmp)`` writes the inputs and returns the
arguments, ``run`` is ``"cli"`` (argv after ``python -m collector``) or a function of the store
and the setup's value, ``expected`` the words the message must hold."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from acquisition.core.errors import DeconfoundError
from collector.cli import main
from collector.serving.service import Collector
from collector.store import Store
from collector.store.create import init_db

GOOD = {"prompt": "What is 2+2?", "chosen": "4.", "rejected": "5."}


def jsonl(tmp: Path, name: str, rows: list[Any]) -> str:
    path = tmp / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def raw(tmp: Path, name: str, data: bytes) -> str:
    (tmp / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp / name).write_bytes(data)
    return str(tmp / name)


def folder(tmp: Path, name: str) -> str:
    (tmp / name).mkdir(exist_ok=True)
    return str(tmp / name)


def _fifo(tmp: Path, name: str) -> str:
    import os

    os.mkfifo(tmp / name)
    return str(tmp / name)


def _link(tmp: Path, name: str, target: Path) -> str:
    (tmp / name).symlink_to(target)
    return str(tmp / name)


def toml(tmp: Path, name: str, text: str, encoding: str = "utf-8") -> str:
    (tmp / name).write_bytes(text.encode(encoding))
    return str(tmp / name)


POLICY = 'name = "randomised_attributes"\n[config]\nattributes = ["hedging"]\nprobability = {p}\n'


def cli(*argv: str) -> Callable[[Path], list[str]]:
    """argv with ``{t}`` replaced by the case's folder; ``--db`` defaults to the case database."""
    def setup(tmp: Path) -> list[str]:
        args = [a.replace("{t}", str(tmp)) for a in argv]
        return args if "--db" in args else [*args, "--db", str(tmp / "d.db")]
    return setup


def with_file(make: Callable[[Path], str], *argv: str) -> Callable[[Path], list[str]]:
    """argv with ``{f}`` replaced by the file ``make`` writes."""
    def setup(tmp: Path) -> list[str]:
        path = make(tmp)
        return cli(*[a.replace("{f}", path) for a in argv])(tmp)
    return setup


CLI_CASES: list[tuple[str, Callable[[Path], list[str]], list[str]]] = [
    # ------------------------------------------------------------------ opening the database
    ("db-is-a-folder", lambda t: ["status", "--db", folder(t, "dir.db")], ["dir.db", "folder"]),
    ("db-not-sqlite", lambda t: ["status", "--db", raw(t, "notes.db", b"just some notes\n" * 20)],
     ["notes.db", "not a SQLite database"]),
    ("db-another-apps-sqlite", lambda t: ["annotator", "add", "x", "--db", _foreign_sqlite(t)],
     ["cache.sqlite", "not Deconfound's"]),
    ("db-missing-status", cli("status", "--db", "{t}/typo.db"), ["typo.db", "no database here", "init"]),
    ("db-missing-annotator-add", cli("annotator", "add", "Ann", "--db", "{t}/nested/typo.db"), ["no database here"]),
    ("db-missing-export", cli("export", "--format", "trl", "--out", "{t}/o.jsonl", "--db", "{t}/typo.db"),
     ["no database here"]),
    ("db-hash-in-path-missing", cli("status", "--db", "{t}/a#b?c.db"), ["a#b?c.db", "no database here"]),
    ("db-newer-schema", lambda t: ["status", "--db", _newer_schema(t)], ["newer than this code", "upgrade"]),
    ("db-locked", lambda t: ["annotator", "add", "x", "--db", _locked(t)], ["locked by another process", "waited"]),
    ("train-missing-db", cli("train", "--db", "{t}/typo.db"), ["no database here"]),
    # ------------------------------------------------------------------ imports
    ("import-lone-surrogate", with_file(lambda t: jsonl(t, "s.jsonl", [GOOD, '{"prompt": "p", "chosen": "\\ud800",'
                                                                       ' "rejected": "r"}']),
                                        "import", "{f}", "--no-embed"), ["s.jsonl, line 2", "'chosen'", "invalid"]),
    ("import-deep-json", with_file(lambda t: jsonl(t, "deep.jsonl", ["[" * 100_000 + "]" * 100_000]),
                                   "import", "{f}", "--no-embed"), ["deep.jsonl", "nested"]),
    ("import-only-blank-rejected", with_file(lambda t: jsonl(t, "b.jsonl", [{**GOOD, "rejected": "   "}]),
                                             "import", "{f}", "--no-embed"), ["b.jsonl", "blank", "line"]),
    ("import-empty-chosen", with_file(lambda t: jsonl(t, "e.jsonl", [{**GOOD, "chosen": ""}]),
                                      "import", "{f}", "--no-embed"), ["e.jsonl", "blank", "1"]),
    ("import-not-json", with_file(lambda t: raw(t, "not_json_at_all.jsonl", b"hello there\nthis is prose\n"),
                                  "import", "{f}", "--no-embed"), ["not_json_at_all.jsonl", "line 1", "JSON"]),
    ("import-huge-line", with_file(lambda t: jsonl(t, "big.jsonl", [{**GOOD, "chosen": "a" * 100_001}]),
                                   "import", "{f}", "--no-embed"), ["big.jsonl, line 1", "'chosen'", "at most 100,000"]),
    ("import-missing-file", cli("import", "{t}/nope.jsonl", "--no-embed"), ["nope.jsonl", "no such file"]),
    ("import-a-folder", with_file(lambda t: folder(t, "dir.jsonl"), "import", "{f}", "--no-embed"),
     ["dir.jsonl", "folder"]),
    ("import-empty-file", with_file(lambda t: raw(t, "empty.jsonl", b""), "import", "{f}", "--no-embed"),
     ["empty.jsonl"]),
    ("import-number-field", with_file(lambda t: jsonl(t, "n.jsonl", [GOOD, {**GOOD, "chosen": 7}]),
                                      "import", "{f}", "--no-embed"), ["n.jsonl, line 2", "'chosen'", "string"]),
    ("import-csv-missing-column", with_file(lambda t: raw(t, "c.csv", b"prompt,chosen\nq,a\n"),
                                            "import", "{f}", "--no-embed"), ["c.csv", "rejected"]),
    ("import-corrupt-gz", with_file(lambda t: raw(t, "x.jsonl.gz", b"\x1f\x8b\x08\x00garbage"),
                                    "import", "{f}", "--no-embed"), ["x.jsonl.gz"]),
    ("import-array-line", with_file(lambda t: jsonl(t, "a.jsonl", [GOOD, [1, 2, 3]]), "import", "{f}", "--no-embed"),
     ["a.jsonl", "line 2"]),
    ("import-fake-parquet", with_file(lambda t: raw(t, "p.parquet", b"not parquet at all"),
                                      "import", "{f}", "--no-embed"), ["p.parquet"]),
    ("import-utf16", with_file(lambda t: raw(t, "u16.jsonl", json.dumps(GOOD).encode("utf-16")),
                               "import", "{f}", "--no-embed"), ["u16.jsonl"]),
    ("import-invalid-utf8", with_file(lambda t: raw(t, "bad8.jsonl", b'{"prompt": "caf\xe9", "chosen": "a", '
                                                                     b'"rejected": "b"}\n'),
                                      "import", "{f}", "--no-embed"), ["bad8.jsonl", "line 1"]),
    ("import-truncated-json", with_file(lambda t: raw(t, "t.json", b'[{"prompt": "p", "chosen": "a"'),
                                        "import", "{f}", "--no-embed"), ["t.json"]),
    ("import-hh-forced-on-trl", with_file(lambda t: jsonl(t, "trl.jsonl", [GOOD]), "import", "{f}", "--no-embed",
                                          "--format", "hh-rlhf"), ["trl.jsonl, line 1"]),
    ("import-task-type-number", with_file(lambda t: jsonl(t, "tt.jsonl", [{**GOOD, "task_type": ["a"]}]),
                                          "import", "{f}", "--no-embed"), ["tt.jsonl, line 1", "task_type"]),
    ("import-prompt-object", with_file(lambda t: jsonl(t, "po.jsonl", [GOOD, GOOD | {"prompt": {"a": 1}}]),
                                       "import", "{f}", "--no-embed"), ["po.jsonl, line 2", "'prompt'"]),
    # ------------------------------------------------------------------ exports
    ("export-to-proc", cli("export", "--format", "trl", "--out", "/proc/deconfound-x.jsonl"), ["/proc/deconfound-x"]),
    ("export-under-a-file", lambda t: ["export", "--format", "trl", "--out",
                                       raw(t, "plain", b"x") + "/o.jsonl", "--db", str(t / "d.db")], ["plain"]),
    ("export-out-is-folder", lambda t: ["export", "--format", "trl", "--out", folder(t, "o.jsonl"),
                                        "--db", str(t / "d.db")], ["o.jsonl", "folder"]),
    ("export-bad-extension", cli("export", "--format", "trl", "--out", "{t}/o.txt"), ["o.txt", ".jsonl"]),
    ("export-card-is-folder", lambda t: [folder(t, "o.jsonl.card.md") and "export", "--format", "trl", "--out",
                                         str(t / "o.jsonl"), "--db", str(t / "d.db")], ["card.md"]),
    # ------------------------------------------------------------------ policy files
    ("policy-latin1", with_file(lambda t: toml(t, "l1.toml", POLICY.format(p=0.5) + "# café\n", "latin-1"),
                                "policy", "apply", "{f}"), ["l1.toml", "UTF-8"]),
    ("policy-utf16", with_file(lambda t: toml(t, "u16.toml", POLICY.format(p=0.5), "utf-16"),
                               "policy", "apply", "{f}"), ["u16.toml", "UTF-8"]),
    ("policy-folder", with_file(lambda t: folder(t, "p.toml"), "policy", "apply", "{f}"), ["p.toml", "folder"]),
    ("policy-missing", cli("policy", "apply", "{t}/missing.toml"), ["missing.toml", "no such file"]),
    ("policy-syntax", with_file(lambda t: toml(t, "s.toml", 'name = "observational"\n[config\n'),
                                "policy", "apply", "{f}"), ["s.toml", "line 2"]),
    ("policy-unknown-name", with_file(lambda t: toml(t, "n.toml", 'name = "nonsense"\n'), "policy", "apply", "{f}"),
     ["nonsense"]),
    ("policy-unknown-key", with_file(lambda t: toml(t, "k.toml", POLICY.format(p=0.5) + "colour = 1\n"),
                                     "policy", "apply", "{f}"), ["colour"]),
    ("policy-wrong-type", with_file(lambda t: toml(t, "w.toml", POLICY.format(p='"half"')), "policy", "apply", "{f}"),
     ["probability"]),
    ("policy-out-of-range", with_file(lambda t: toml(t, "r.toml", POLICY.format(p=1.5)), "policy", "apply", "{f}"),
     ["probability"]),
    ("policy-unknown-attribute", with_file(lambda t: toml(t, "a.toml", POLICY.format(p=0.5).replace(
        "hedging", "sparkle")), "policy", "apply", "{f}"), ["sparkle"]),
    # ------------------------------------------------------------------ QC
    ("qc-file-latin1", with_file(lambda t: toml(t, "q.toml", "overlap = 2 # é\n", "latin-1"), "qc", "set",
                                 "--file", "{f}"), ["q.toml", "UTF-8"]),
    ("qc-file-folder", with_file(lambda t: folder(t, "q.toml"), "qc", "set", "--file", "{f}"), ["q.toml", "folder"]),
    ("qc-overlap-zero", cli("qc", "set", "overlap=0"), ["overlap"]),
    ("qc-rate-above-one", cli("qc", "set", "gold_rate=2"), ["gold_rate"]),
    ("qc-unknown-key", cli("qc", "set", "colour=2"), ["colour"]),
    ("qc-nothing-given", cli("qc", "set"), ["KEY=VALUE"]),
    ("qc-not-an-assignment", cli("qc", "set", "overlap"), ["overlap"]),
    ("qc-unknown-attention-kind", cli("qc", "set", 'attention_kinds=["nope"]'), ["nope"]),
    # ------------------------------------------------------------------ gold
    ("gold-corrupt-gz", with_file(lambda t: raw(t, "g.jsonl.gz", b"\x1f\x8b\x08\x00broken"), "gold", "add", "{f}"),
     ["g.jsonl.gz"]),
    ("gold-folder", with_file(lambda t: folder(t, "g.jsonl"), "gold", "add", "{f}"), ["g.jsonl", "folder"]),
    ("gold-missing", cli("gold", "add", "{t}/nope.jsonl"), ["nope.jsonl"]),
    ("gold-missing-field", with_file(lambda t: jsonl(t, "g2.jsonl", [GOOD, {"prompt": "p", "chosen": "a"}]),
                                     "gold", "add", "{f}"), ["g2.jsonl", "line 2", "rejected"]),
    ("gold-bad-expected", with_file(lambda t: jsonl(t, "g3.jsonl", [{**GOOD, "expected": "maybe"}]),
                                    "gold", "add", "{f}"), ["g3.jsonl", "line 1", "expected"]),
    ("gold-empty", with_file(lambda t: raw(t, "g4.jsonl", b"\n\n"), "gold", "add", "{f}"), ["g4.jsonl"]),
    ("gold-lone-surrogate", with_file(lambda t: jsonl(t, "g5.jsonl", ['{"prompt": "p", "chosen": "\\udfff", '
                                                                      '"rejected": "r"}']),
                                      "gold", "add", "{f}"), ["g5.jsonl", "line 1"]),
    # ------------------------------------------------------------------ simulate, annotators, researchers
    ("simulate-no-pool", lambda t: ["simulate", "--db", _no_pool(t)], ["pool"]),
    ("simulate-zero-labels", cli("simulate", "--labels", "0"), ["labels"]),
    ("simulate-unknown-attribute", cli("simulate", "--effect", "sparkle=1"), ["sparkle"]),
    ("simulate-flip-rate", cli("simulate", "--flip-rate", "1.5"), ["flip"]),
    # ------------------------------------------------------------------ numbers at the boundary (second pass)
    ("simulate-noise-nan", cli("simulate", "--noise", "nan"), ["--noise", "finite"]),
    ("simulate-groups-empty", cli("simulate", "--groups", ",,,"), ["--groups"]),
    ("simulate-annotators-zero", cli("simulate", "--annotators", "0"), ["--annotators"]),
    ("train-rm-epochs-negative", cli("train-rm", "--model", "{t}", "--out", "{t}/rm", "--epochs", "-1"), ["--epochs"]),
    ("train-rm-batch-size-zero", cli("train-rm", "--model", "{t}", "--out", "{t}/rm", "--batch-size", "0"),
     ["--batch-size"]),
    ("train-rm-max-steps-zero", cli("train-rm", "--model", "{t}", "--out", "{t}/rm", "--max-steps", "0"), ["--max-steps"]),
    ("train-rm-lr-inf", cli("train-rm", "--model", "{t}", "--out", "{t}/rm", "--lr", "inf"), ["--lr"]),
    ("worker-threads-zero", cli("worker", "--once", "--threads", "0"), ["--threads"]),
    ("generate-timeout-nan", cli("generate", "--prompts", "{t}/p.jsonl", "--model", "m", "--endpoint",
                                 "http://127.0.0.1:9/v1", "--timeout", "nan"), ["--timeout"]),
    ("generate-top-p-zero", cli("generate", "--prompts", "{t}/p.jsonl", "--model", "m", "--endpoint",
                                "http://127.0.0.1:9/v1", "--top-p", "0"), ["--top-p"]),
    ("judge-attempts-zero", cli("judge", "--model", "m", "--endpoint", "http://127.0.0.1:9/v1", "--labels", "3",
                                "--attempts", "0"), ["--attempts"]),
    ("judge-seed-negative", cli("judge", "--model", "m", "--endpoint", "http://127.0.0.1:9/v1", "--labels", "3",
                                "--seed", "-4"), ["--seed"]),
    ("export-onto-the-database", lambda t: [_link(t, "db.jsonl", t / "d.db") and "export", "--format", "trl", "--out",
                                            str(t / "db.jsonl"), "--db", str(t / "d.db")], ["database"]),
    ("train-rm-garbage-config", lambda t: [raw(t, "m/config.json", b"{not json") and "train-rm", "--model",
                                           str(t / "m"), "--out", str(t / "rm"), "--db", str(t / "d.db")],
     ["config.json", "not a readable"]),
    ("worker-checkpoints-is-a-file", lambda t: [raw(t, "models", b"x") and "worker", "--once", "--db", str(t / "d.db")],
     ["is a file"]),
    ("import-ultrafeedback-prompt-without-response", with_file(lambda t: raw(t, "uf.jsonl", json.dumps(
        {"prompt": "Name a prime.", "chosen": [{"role": "user", "content": "Name a prime."}],
         "rejected": [{"role": "user", "content": "Name a prime."}], "score_chosen": 5, "score_rejected": 1}).encode()),
        "import", "{f}"), ["chosen[0].role", "assistant"]),
    ("import-task-type-1m", with_file(lambda t: raw(t, "tt.jsonl", json.dumps(
        {"prompt": "q", "chosen": "a", "rejected": "b", "task_type": "x" * 1_000_000}).encode()), "import", "{f}"),
     ["task_type", "200"]),
    ("import-arena-model-surrogate", with_file(lambda t: raw(t, "ms.jsonl", json.dumps(
        {"model_a": "m\ud800", "model_b": "n", "winner": "model_a",
         "conversation_a": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
         "conversation_b": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]}).encode()),
        "import", "{f}"), ["model", "invalid character"]),
    ("researcher-name-newline", lambda t: ["researcher", "add", "eve\nmallory", "--password-stdin", "--db", str(t / "d.db")],
     ["one line"]),
    ("train-with-too-few-labels", cli("train"), ["labels with a winner", "nothing was written"]),
    ("status-db-is-a-fifo", lambda t: ["status", "--db", _fifo(t, "pipe.db")], ["pipe.db", "regular file"]),
    ("import-a-fifo", lambda t: ["import", _fifo(t, "pipe.jsonl"), "--db", str(t / "d.db")], ["pipe.jsonl", "regular file"]),
    ("policy-apply-a-fifo", lambda t: ["policy", "apply", _fifo(t, "pipe.toml"), "--db", str(t / "d.db")],
     ["pipe.toml", "regular file"]),
    ("policy-mixture-weight-nan", with_file(lambda t: toml(t, "m.toml", 'name = "mixture"\n[[config.components]]\n'
                                                                       'name = "observational"\nweight = nan\n'),
                                            "policy", "apply", "{f}"), ["weight"]),
    ("policy-mixture-weight-inf", with_file(lambda t: toml(t, "m.toml", 'name = "mixture"\n[[config.components]]\n'
                                                                       'name = "observational"\nweight = inf\n'),
                                            "policy", "apply", "{f}"), ["weight"]),
    ("audit-json-onto-its-data", lambda t: ["editors", "audit", "--data", jsonl(t, "pool.jsonl", [GOOD]), "--no-embed",
                                            "--json", str(t / "pool.jsonl")], ["--json", "being audited"]),
    ("plan-nothing-asked", cli("plan"), ["--effect", "--budget"]),
    ("plan-power-one", cli("plan", "--effect", "0.05", "--power", "1"), ["--power"]),
    ("plan-effect-zero", cli("plan", "--effect", "0"), ["--effect"]),
    ("plan-effect-nan", cli("plan", "--effect", "nan"), ["--effect"]),
    ("plan-p-on-one", cli("plan", "--effect", "0.05", "--p-on", "1"), ["--p-on"]),
    ("plan-tie-rate-one", cli("plan", "--effect", "0.05", "--tie-rate", "1"), ["--tie-rate"]),
    ("plan-budget-zero", cli("plan", "--budget", "0"), ["--budget"]),
    ("plan-policy-missing", cli("plan", "--effect", "0.05", "--policy", "{t}/nope.toml"), ["nope.toml"]),
    ("annotator-empty-name", cli("annotator", "add", "  "), ["name", "empty"]),
    ("annotator-control-chars", cli("annotator", "add", "Ann\x1b[31m"), ["name"]),
    ("annotator-empty-covariate-key", cli("annotator", "add", "Ann", "--covariate", "=x"), ["covariate key"]),
    ("annotator-long-name", cli("annotator", "add", "A" * 500), ["name", "at most"]),
    ("annotator-exclude-unknown", cli("annotator", "exclude", "9999", "--reason", "spam"), ["9999"]),
    ("annotator-exclude-no-reason", cli("annotator", "exclude", "1", "--reason", " "), ["reason"]),
    ("annotator-exclude-reason-100k", cli("annotator", "exclude", "1", "--reason", "x" * 100_000), ["--reason", "500"]),
    ("researcher-remove-unknown", cli("researcher", "remove", "nobody"), ["nobody"]),
    ("train-bad-config", with_file(lambda t: toml(t, "tr.toml", "model = 'nope'\n"), "train", "--config", "{f}"),
     ["nope"]),
]


def _foreign_sqlite(tmp: Path) -> str:
    path = tmp / "cache.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE embeddings (key TEXT PRIMARY KEY, vector BLOB)")
    conn.commit()
    conn.close()
    return str(path)


def _newer_schema(tmp: Path) -> str:
    conn = sqlite3.connect(tmp / "d.db")
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    return str(tmp / "d.db")


_HELD: list[sqlite3.Connection] = []


def _locked(tmp: Path) -> str:
    conn = sqlite3.connect(tmp / "d.db", isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")  # another process writing; released when the test ends
    _HELD.append(conn)
    return str(tmp / "d.db")


def _no_pool(tmp: Path) -> str:
    init_db(tmp / "empty.db")
    return str(tmp / "empty.db")


class Served:
    """A store with a pair served to its annotator (before the row counts are taken)."""

    def __init__(self, store: Store) -> None:
        self.store, self.collector = store, Collector(store, seed=0)
        self.annotator = store.annotators()[0]["id"]
        self.pair = self.collector.next_pair(self.annotator).served_pair_id

    def answer(self, choice: str, **kwargs: Any) -> Any:
        return self.collector.submit(self.annotator, self.pair, choice, **kwargs)


API_CASES: list[tuple[str, Callable[[Served], Any], list[str]]] = [
    ("api-strength-bool", lambda s: s.answer("left", strength=True), ["strength"]),
    ("api-strength-with-tie", lambda s: s.answer("tie", strength=2), ["strength"]),
    ("api-strength-out-of-range", lambda s: s.answer("left", strength=7), ["strength"]),
    ("api-rationale-1mb", lambda s: s.answer("left", rationale="x" * 1_000_000),
     ["rationale"]),
    ("api-rationale-number", lambda s: s.answer("left", rationale=123), ["rationale"]),
    ("api-choice-unknown", lambda s: s.answer("maybe"), ["maybe"]),
    ("api-unknown-served-pair", lambda s: s.collector.submit(s.annotator, 999_999, "left"), ["999999"]),
    ("api-name-none", lambda s: s.store.add_annotator(None), ["name"]),
    ("api-covariates-list", lambda s: s.store.add_annotator("Ann", covariates=[1, 2]), ["covariates"]),
    ("api-covariate-value-dict", lambda s: s.store.add_annotator("Ann", covariates={"age": {"x": 1}}), ["covariates.age"]),
    ("api-objective-too-long", lambda s: s.store.add_annotator("Ann", objective="x" * 10_000), ["objective"]),
    ("api-researcher-short-password", lambda s: s.store.add_researcher("eve", "short"), ["password"]),
    ("api-activate-unknown-policy", lambda s: s.store.activate_policy("nonsense", {}), ["nonsense"]),
]


def row_counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: conn.execute(f"SELECT count(*) FROM [{t}]").fetchone()[0] for t in tables}
    finally:
        conn.close()


def files(tmp: Path) -> set[str]:
    return {str(p.relative_to(tmp)) for p in tmp.rglob("*") if not p.name.endswith(("-wal", "-shm"))}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A database with the demo pool, one annotator and a few labels, copied for each case."""
    path = tmp_path_factory.mktemp("template") / "d.db"
    init_db(path, demo=True)
    store = Store(path)
    store.add_annotator("Ann")
    collector = Collector(store, seed=1)
    for choice in ("left", "right", "tie"):
        collector.submit(1, collector.next_pair(1).served_pair_id, choice)
    store.close()
    return path


@pytest.fixture
def case_dir(tmp_path, template, monkeypatch) -> Path:
    import collector.store.connection as connection

    monkeypatch.setattr(connection, "LOCK_TIMEOUT_SECONDS", 0.5)
    monkeypatch.chdir(tmp_path)
    src = sqlite3.connect(template)
    dst = sqlite3.connect(tmp_path / "d.db")
    src.backup(dst)
    src.close()
    dst.close()
    yield tmp_path
    while _HELD:
        _HELD.pop().close()


def _counts_of_every_db(tmp: Path) -> dict[str, dict[str, int]]:
    out = {}
    for path in tmp.rglob("*"):
        if path.is_file() and path.read_bytes()[:16] == b"SQLite format 3\x00" and "cache" not in path.name:
            out[path.name] = row_counts(path)
    return out


@pytest.mark.parametrize("case", CLI_CASES + API_CASES, ids=[c[0] for c in CLI_CASES + API_CASES])
def test_bad_input_gives_one_clear_error_and_writes_nothing(case, case_dir, capsys):
    name, setup, expected = case
    if name.startswith("api-"):
        served = Served(Store(case_dir / "d.db"))
        before = row_counts(case_dir / "d.db")
        with pytest.raises(DeconfoundError) as info:
            setup(served)
        message = str(info.value)
        served.store.close()
        assert row_counts(case_dir / "d.db") == before
    else:
        argv = setup(case_dir)
        before_files = files(case_dir)
        before = _counts_of_every_db(case_dir) if not _HELD else None
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 1, f"{argv} exited {code}: {err}"
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        message = lines[0]
        assert "Traceback" not in err and "Error:" not in message.split(":", 1)[1][:20]
        assert files(case_dir) == before_files, "files were created or removed"
        if before is not None:
            assert _counts_of_every_db(case_dir) == before
    for words in expected:
        assert words.lower() in message.lower(), f"{message!r} lacks {words!r}"
    assert len(message) < 600


def test_the_corpus_is_large_enough():
    assert len(CLI_CASES) + len(API_CASES) >= 60


def test_reading_commands_never_write_and_odd_paths_open_the_right_file(case_dir, capsys):
    """``status``, ``export`` and friends open read-only: the database file is byte-identical
    after them; a path with ``#`` and ``?`` opens that file, not another one."""
    import hashlib

    odd = case_dir / "a#b?c.db"
    (case_dir / "d.db").rename(odd)
    digest = hashlib.sha256(odd.read_bytes()).hexdigest()
    assert main(["status", "--db", str(odd)]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == 3
    assert main(["qc", "report", "--db", str(odd)]) == 0
    assert main(["policy", "show", "--db", str(odd)]) == 0
    assert hashlib.sha256(odd.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in case_dir.iterdir() if not p.name.endswith(("-wal", "-shm"))) == ["a#b?c.db"]


# ---------------------------------------------------------------------- one case per option (second pass)
# Every option of the commands added since the first pass gets at least one bad value. The
# numeric ones are generated from the parser, so an option added later without a boundary check
# fails here; the rest are listed by hand. Each must give exit 1, one ``error:`` line naming the
# option, and leave every table and file unchanged.
NEW_COMMANDS = ("generate", "judge", "rewrite", "train", "train-rm", "simulate", "worker")
ENDPOINT = "http://127.0.0.1:9/v1"  # nothing listens: a case that reached the network would fail differently
REQUIRED = {  # the arguments each command needs besides the one under test
    "generate": ["--prompts", "{t}/p.jsonl", "--model", "m", "--endpoint", ENDPOINT],
    "judge": ["--model", "m", "--endpoint", ENDPOINT, "--labels", "3"],
    "rewrite": ["--model", "m", "--endpoint", ENDPOINT],
    "train": [], "train-rm": ["--model", "{t}", "--out", "{t}/rm"], "simulate": [], "worker": ["--once"],
}


def _numeric_options() -> list[tuple[str, str, str]]:
    """(command, option, bad value) for every int or float option of the new commands."""
    import argparse

    from collector.cli import NUMBERS, build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    cases = []
    for command in NEW_COMMANDS:
        for action in sub.choices[command]._actions:
            if action.type not in (int, float):
                continue
            option = action.option_strings[-1]
            if action.dest == "max_steps":
                cases.append((command, option, "0"))
                continue
            assert action.dest in NUMBERS or action.dest == "temperatures", f"{command} {option}: no boundary check"
            low, high, closed, _ = NUMBERS.get(action.dest, (0, None, True, ""))
            if action.type is float:
                cases.append((command, option, "nan"))
            below = low - 1 if closed else low
            cases.append((command, option, str(int(below) if action.type is int else below)))
            if high is not None:
                cases.append((command, option, str(int(high) + 1 if action.type is int else high * 2)))
    return cases


def _option_case(command: str, option: str, value: str) -> tuple[str, Callable[[Path], list[str]], list[str]]:
    required = [a for a in REQUIRED[command]]
    if option in required:  # the option under test replaces the required one
        at = required.index(option)
        del required[at:at + 2]
    return (f"{command}{option}={value}", cli(command, *required, option, value), [option])


OPTION_CASES = [_option_case(*c) for c in _numeric_options()] + [
    (name, cli(*argv), words) for name, argv, words in [
        ("generate--prompts-missing", ["generate", "--model", "m", "--endpoint", ENDPOINT, "--prompts", "{t}/no.jsonl"],
         ["--prompts", "no such file"]),
        ("generate--model-missing-dir", ["generate", "--prompts", "{t}/p.jsonl", "--model", "{t}/nope"],
         ["nope", "--model"]),
        ("generate--endpoint-ftp", ["generate", "--prompts", "{t}/p.jsonl", "--model", "m", "--endpoint", "ftp://x"],
         ["--endpoint"]),
        ("generate--device-unknown", ["generate", "--prompts", "{t}/p.jsonl", "--model", "m", "--device", "quantum"],
         ["--device"]),
        ("generate--device-with-endpoint", [*["generate", *REQUIRED["generate"]], "--device", "cpu"], ["--device"]),
        ("generate--timeout-without-endpoint", ["generate", "--prompts", "{t}/p.jsonl", "--model", "{t}",
                                                "--timeout", "5"], ["--timeout", "--endpoint"]),
        ("judge--model-missing-dir", ["judge", "--model", "{t}/nope", "--labels", "3"], ["nope", "--model"]),
        ("judge--endpoint-not-a-url", ["judge", "--model", "m", "--endpoint", "localhost:8000", "--labels", "3"],
         ["--endpoint"]),
        ("judge--device-unknown", ["judge", "--model", "{t}/nope", "--labels", "3", "--device", "gpu0"], ["--device"]),
        ("rewrite--attributes-unknown", ["rewrite", *REQUIRED["rewrite"], "--attributes", "sparkle"],
         ["--attributes", "sparkle"]),
        ("rewrite--config-missing", ["rewrite", *REQUIRED["rewrite"], "--config", "{t}/no.toml"], ["no.toml"]),
        ("rewrite--model-missing-dir", ["rewrite", "--model", "{t}/nope"], ["nope", "--model"]),
        ("rewrite--device-unknown", ["rewrite", "--model", "{t}/nope", "--device", "tpu"], ["--device"]),
        ("judge--objective-blank", ["judge", *REQUIRED["judge"], "--objective", "  "], ["--objective", "empty"]),
        ("judge--objective-too-long", ["judge", *REQUIRED["judge"], "--objective", "x" * 5000], ["--objective", "500"]),
        ("rewrite--endpoint-no-model", ["rewrite", "--endpoint", ENDPOINT], ["--model"]),
        ("rewrite--retries-without-endpoint", ["rewrite", "--model", "{t}/nope", "--retries", "2"], ["--endpoint"]),
        ("train--model-unknown", ["train", "--model", "nope"], ["nope"]),
        ("train--config-missing", ["train", "--config", "{t}/no.toml"], ["no.toml"]),
        ("train-rm--model-not-a-model", ["train-rm", "--model", "{t}", "--out", "{t}/rm"], ["--model", "config.json"]),
        ("train-rm--out-is-the-database", ["train-rm", "--model", "{t}", "--out", "{t}/d.db"], ["--model"]),
        ("simulate--effect-nan", ["simulate", "--effect", "hedging=nan"], ["--effect", "finite"]),
        ("simulate--group-effect-inf", ["simulate", "--group-effect", "a:hedging=inf"], ["--group-effect", "finite"]),
        ("simulate--groups-twice", ["simulate", "--groups", "a,b,a"], ["--groups", "twice"]),
        ("worker--config-missing", ["worker", "--once", "--config", "{t}/no.toml"], ["no.toml"]),
    ]
] + [(f"{command}--db-is-a-fifo", lambda t, c=command: [c, *[a.replace("{t}", str(t)) for a in REQUIRED[c]], "--db",
                                                      _fifo(t, "pipe.db")], ["pipe.db", "regular file"])
     for command in NEW_COMMANDS]


def _read_only_folder(tmp: Path) -> list[str]:
    """The database in a folder nobody may write to: ``chattr +i`` binds root too; without
    that capability, a non-root user's ``chmod``."""
    import os
    import shutil
    import subprocess

    (tmp / "ro").mkdir()
    shutil.copy(tmp / "d.db", tmp / "ro" / "r.db")
    if os.geteuid() != 0:
        (tmp / "ro").chmod(0o555)
    else:
        done = subprocess.run(["chattr", "+i", str(tmp / "ro")], capture_output=True, text=True)
        assert done.returncode == 0, f"root needs chattr (e2fsprogs) and CAP_LINUX_IMMUTABLE here: {done.stderr}"
    return ["annotator", "add", "Zed", "--db", str(tmp / "ro" / "r.db")]


@pytest.fixture
def prompts(case_dir):
    (case_dir / "p.jsonl").write_text('{"prompt": "What is 2+2?"}\n')
    return case_dir


@pytest.mark.parametrize("case", OPTION_CASES, ids=[c[0] for c in OPTION_CASES])
def test_every_new_option_refuses_a_bad_value_in_one_line_and_writes_nothing(case, prompts, capsys):
    test_bad_input_gives_one_clear_error_and_writes_nothing(case, prompts, capsys)


def test_a_write_in_a_read_only_folder_fails_in_one_line_and_writes_nothing(case_dir, capsys):
    import hashlib
    import subprocess

    argv = _read_only_folder(case_dir)
    try:
        digest = hashlib.sha256((case_dir / "ro" / "r.db").read_bytes()).hexdigest()
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Nothing was saved" in err, err
        assert hashlib.sha256((case_dir / "ro" / "r.db").read_bytes()).hexdigest() == digest
        assert sorted(p.name for p in (case_dir / "ro").iterdir()) == ["r.db"]
    finally:
        subprocess.run(["chattr", "-i", str(case_dir / "ro")], capture_output=True)
        (case_dir / "ro").chmod(0o755)


def test_every_option_of_the_new_commands_has_a_case():
    """An option added later to one of these commands, with no bad-input case, fails here."""
    import argparse

    from collector.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    ids = " ".join(c[0] for c in OPTION_CASES + CLI_CASES)
    untested = [f"{command} {action.option_strings[-1]}" for command in NEW_COMMANDS
                for action in sub.choices[command]._actions
                if action.option_strings and action.nargs != 0 and action.dest not in ("help", "json", "weighting")
                and f"{command}{action.option_strings[-1]}" not in ids]
    assert not untested, untested
