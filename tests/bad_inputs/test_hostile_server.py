"""A hostile OpenAI-compatible server (500s, a 429 storm, malformed JSON, a huge body, a huge or
invalid reply, a server too slow to answer, replies with no verdict) drives every job that talks
to one: ``generate``, ``judge`` and ``rewrite --endpoint``. After each failed run the database's
tables are exactly as before, or the run stored whole items only and says it is resumable; a
run never prints a traceback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from llm_server import FakeOpenAIServer, save_tiny_chat_model

from collector.cli import main
from collector.store.create import init_db
from models.generation import MAX_BODY_BYTES

HOSTILE = {
    "always-500": {"fail_always": True},
    "429-storm": {"status_always": 429},
    "malformed-json": {"malformed": True},
    "huge-body": {"pad_bytes": MAX_BODY_BYTES + 10},
    "huge-reply": {"reply_text": "word " * 120_000},
    "lone-surrogate": {"reply_text": "fine until \ud800 here"},
    "too-slow": {"delay": 3.0},
    "no-verdict": {"reply_text": "Both answers have merits and I would rather not choose."},
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_chat_model(tmp_path_factory.mktemp("tiny-chat"))


def tables(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table (the meta table's timestamps included): 'as before' means equal."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: sorted(map(repr, conn.execute(f"SELECT * FROM [{n}]"))) for n in names}
    finally:
        conn.close()


def argv(job: str, db: Path, url: str, tmp: Path) -> list[str]:
    common = ["--db", str(db), "--model", "tiny-chat", "--endpoint", url, "--retries", "1", "--timeout", "1"]
    if job == "generate":
        prompts = tmp / "prompts.jsonl"
        prompts.write_text("".join(json.dumps({"prompt": f"How do I do task {i}?"}) + "\n" for i in range(4)))
        return ["generate", *common, "--prompts", str(prompts), "--n", "1"]
    if job == "judge":
        return ["judge", *common, "--labels", "3", "--attempts", "2"]
    return ["rewrite", *common, "--attributes", "bold", "--limit", "2"]


@pytest.mark.parametrize("job", ["generate", "judge", "rewrite"])
@pytest.mark.parametrize("hostile", list(HOSTILE))
def test_a_failed_run_against_a_hostile_server_leaves_the_tables_as_they_were(tmp_path, model_dir, capsys, job,
                                                                               hostile):
    db = tmp_path / "h.db"
    init_db(db, demo=True)
    before = tables(db)
    with FakeOpenAIServer(model_dir, **HOSTILE[hostile]) as server:
        code = main(argv(job, db, server.url, tmp_path))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "unexpected" not in captured.err, captured.err
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    after = tables(db)
    if hostile == "no-verdict" and job != "judge":
        # the control: a well-behaved server's replies are stored, and the run succeeds
        assert code == 0 and after != before, (job, captured.err)
        return
    assert code == 1 and len(errors) == 1, (code, captured.err)
    if after != before:  # something was stored: only by a judge, and the run says how to resume
        assert job == "judge" and "resume" in errors[0], (job, hostile, captured.err)
    if hostile in ("always-500", "429-storm", "malformed-json", "huge-body", "too-slow"):
        assert after == before, (job, hostile, captured.err)  # nothing came back: nothing made
    elif hostile in ("huge-reply", "lone-surrogate"):
        assert "text checks" in errors[0], captured.err  # refused, never stored
        assert after == before or job == "judge", job  # a judge keeps its open pair for the next run
    else:
        assert "no reply held a verdict" in errors[0], captured.err
