"""Language models in the loop: one generation client (local transformers, OpenAI-compatible
HTTP), pool generation, the rewriter through the client, and LLM judges as annotators."""

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from llm_server import FakeOpenAIServer, save_tiny_chat_model

from acquisition.effects import amce
from collector.app import REPOSITORY
from collector.cli import main
from collector.io.card import build_card
from collector.io.frames import pairs_frame
from collector.jobs.generate_job import read_prompts
from collector.jobs.judge import parse_verdict
from collector.store import Store
from collector.store.create import init_db
from models.generation import Decoding, GenerationError, HTTPGenerator, LocalGenerator, make_generator

PROMPTS = [f"How do I do task number {i} well?" for i in range(20)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_chat_model(tmp_path_factory.mktemp("tiny-chat"))


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "task_type": ("code", "advice")[i % 2]}) + "\n"
                            for i, p in enumerate(PROMPTS)))
    return path


def fresh_db(tmp_path: Path) -> Path:
    init_db(tmp_path / "llm.db")
    return tmp_path / "llm.db"


def test_local_and_http_backends_write_the_same_text_under_a_seed(model_dir):
    local = LocalGenerator(model_dir, name="tiny-chat")
    messages = [[{"role": "user", "content": "say something useful"}]] * 3
    decoding = Decoding(max_new_tokens=12, temperature=1.0)
    first = local.chat(messages, decoding, [1, 2, 3])
    assert first == local.chat(messages, decoding, [1, 2, 3]) and len(set(first)) > 1  # seeded, per item
    with FakeOpenAIServer(model_dir) as server:
        http = HTTPGenerator(server.url, "tiny-chat", concurrency=3)
        assert http.chat(messages, decoding, [1, 2, 3]) == first
        sent = server.requests[-1]
        assert sent["model"] == "tiny-chat" and sent["max_tokens"] == 12 and sent["temperature"] == 1.0


def test_http_client_retries_errors_and_stalls_then_reports_a_dead_server(model_dir):
    messages = [[{"role": "user", "content": "hello"}]]
    with FakeOpenAIServer(model_dir, fail_first=2, stall_first=1, stall_seconds=3.0) as server:
        client = HTTPGenerator(server.url, "tiny-chat", timeout=1.0, retries=4, backoff=0.01)
        assert isinstance(client.chat(messages, Decoding(max_new_tokens=4), [0])[0], str)
        assert client.stats == {"requests": 4, "retries": 3, "failures": 0}  # 500, 500, timeout, then served
    with FakeOpenAIServer(model_dir, fail_always=True) as server:
        client = HTTPGenerator(server.url, "tiny-chat", retries=2, backoff=0.01)
        with pytest.raises(GenerationError, match="gave up after 3 attempts.*HTTP 503"):
            client.chat(messages, Decoding(max_new_tokens=4), [0])
        wrong = HTTPGenerator(server.url.replace("/v1", "/nope"), "tiny-chat", retries=3, backoff=0.01)
        with pytest.raises(GenerationError, match="HTTP 404"):  # a caller's mistake: no retries
            wrong.chat(messages, Decoding(max_new_tokens=4), [0])
        assert wrong.stats["requests"] == 1


def test_bad_client_settings_and_prompt_files_are_refused_in_one_line(tmp_path, model_dir):
    from acquisition.core.errors import ConfigError, ImportFormatError

    with pytest.raises(ConfigError, match="--endpoint: must start with http"):
        make_generator("m", "localhost:8000")
    with pytest.raises(ConfigError, match="--concurrency: must be positive"):
        make_generator("m", "http://127.0.0.1:9/v1", concurrency=0)
    with pytest.raises(ConfigError, match="no such directory"):
        make_generator(str(tmp_path / "missing"))
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"prompt": 3}\n')
    with pytest.raises(ImportFormatError, match=r"p.jsonl, line 2: field 'prompt' must be a string"):
        read_prompts(bad)
    assert main(["generate", "--db", str(fresh_db(tmp_path)), "--prompts", str(bad), "--model", "m",
                 "--endpoint", "http://127.0.0.1:9/v1"]) == 1


def test_generate_through_http_then_a_judge_study_shows_on_the_dashboard_and_the_card(
        tmp_path, model_dir, prompts_file, monkeypatch, capsys):
    """The issue's end-to-end check: 20 prompts x 2 responses through the HTTP back-end, 50 pairs
    judged under randomised_attributes, the judge group's AMCE in the dashboard data and the card."""
    db = fresh_db(tmp_path)
    with FakeOpenAIServer(model_dir, fail_first=1) as server:  # one failure on the way, retried
        assert main(["generate", "--db", str(db), "--prompts", str(prompts_file), "--model", "tiny-chat",
                     "--endpoint", server.url, "--n", "2", "--temperatures", "0.7", "1.0",
                     "--max-new-tokens", "24", "--concurrency", "4"]) == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["http"]["tiny-chat"]["retries"] == 1 and summary["failed"] == 0
        assert summary["stored"] + summary["empty"] + summary["duplicates"] == 40
        store = Store(db)
        rows = store._all("SELECT r.model, r.generation, p.text AS prompt FROM responses r "
                          "JOIN prompts p ON p.id = r.prompt_id")
        assert len(rows) == summary["stored"] >= 36 and {r["model"] for r in rows} == {"tiny-chat"}
        generation = [json.loads(r["generation"]) for r in rows]
        assert {(g["sample"], g["decoding"]["temperature"]) for g in generation} == {(0, 0.7), (1, 1.0)}
        assert all(g["backend"] == "openai" and g["decoding"]["max_new_tokens"] == 24 for g in generation)
        store.close()

        assert main(["judge", "--db", str(db), "--model", "tiny-chat", "--endpoint", server.url, "--labels", "50",
                     "--temperature", "1.0", "--max-new-tokens", "16", "--attempts", "4", "--judges", "1"]) == 0
        judged = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert judged["group"] == "llm:tiny-chat" and judged["labels"] + judged["skipped_no_verdict"] == 50
    assert judged["labels"] >= 35, judged
    store = Store(db)
    pairs = pairs_frame(store)
    labelled = pairs[pairs.status == "labelled"]
    assert len(labelled) == judged["labels"] and set(labelled.annotator_group) == {"llm:tiny-chat"}
    assert set(labelled.policy) == {"randomised_attributes"} and labelled.arm_propensity.notna().all()
    record = json.loads(labelled.judgement.iloc[0])
    assert record["model"] == "tiny-chat" and "[[A]]" in record["template"]["system"]
    assert parse_verdict(record["raw"]) == labelled.label.iloc[0]
    assert record["messages"][1]["content"].count("[The start of response") == 2
    assert {json.loads(g)["model"] for g in labelled.left_generation} == {"tiny-chat"}  # exports carry it
    table = amce(pairs, by=["annotator_group"])
    assert set(table.annotator_group) == {"llm:tiny-chat"}
    for _, row in table.iterrows():  # the judged pairs where the attribute applies to both responses
        applies = labelled[f"left_{row.attribute}"].notna() & labelled[f"right_{row.attribute}"].notna()
        assert row.n_labels == applies.sum() <= judged["labels"]
    assert table.n_labels.max() > 0
    card = build_card(store, pairs)
    assert "## Labels from models" in card and "| llm:tiny-chat | tiny-chat | openai |" in card
    assert "| llm:tiny-chat | bold |" in card  # the judge group's AMCE row in the card's table
    store.close()

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DECONFOUND_DB", str(db))
    monkeypatch.setenv("DECONFOUND_RESEARCHER_PASSWORD", "s3cret")
    at = AppTest.from_file(str(REPOSITORY / "collector" / "app" / "pages" / "dashboard.py"), default_timeout=60).run()
    at.text_input(key="dashboard_password").input("s3cret")
    at.button(key="dashboard_enter").click().run()
    at.session_state["dashboard_tab"] = "Effects"
    at.run()
    assert not at.exception
    effects = at.dataframe[0].value
    judge_rows = effects[(effects["scope"] == "annotator group") & (effects["cell"] == "llm:tiny-chat")]
    estimated = table[table.n_labels > 0].set_index("attribute").n_labels
    assert set(judge_rows.attribute) >= set(estimated.index) - {"headers"} and len(judge_rows) > 0
    assert (judge_rows.set_index("attribute").n_labels == estimated.reindex(judge_rows.attribute)).all()


def test_a_killed_generate_resumes_without_writing_any_response_twice(tmp_path, model_dir, prompts_file):
    db = fresh_db(tmp_path)
    server = subprocess.Popen([sys.executable, str(REPOSITORY / "tests" / "llm_server.py"), str(model_dir), "0.15"],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        command = [sys.executable, "-m", "collector", "generate", "--db", str(db), "--prompts", str(prompts_file),
                   "--model", "tiny-chat", "--endpoint", url, "--n", "2", "--max-new-tokens", "8",
                   "--concurrency", "1"]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        store = Store(db)
        deadline = time.time() + 120
        while store.counts()["base_responses"] < 8 and time.time() < deadline:
            time.sleep(0.1)
        job.kill()
        job.wait(timeout=30)
        before = store.counts()["base_responses"]
        assert 8 <= before < 40, before
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-1500:]
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert summary["skipped_done"] >= before and summary["stored"] + summary["skipped_done"] <= 40
        keys = [(r["prompt_id"], json.loads(r["generation"])["sample"]) for r in
                store._all("SELECT prompt_id, generation FROM responses")]
        assert max(Counter(keys).values()) == 1  # no (prompt, sample) twice
        assert len(keys) == 40 - summary["empty"] - summary["duplicates"]
        store.close()
    finally:
        server.kill()


def test_the_rewriter_runs_through_a_served_model(tmp_path, model_dir, capsys):
    init_db(tmp_path / "r.db", demo=True)
    config = tmp_path / "rewriter.toml"
    config.write_text("greedy = false\ntemperature = 1.0\nmax_new_tokens = 12\n")
    with FakeOpenAIServer(model_dir) as server:
        assert main(["rewrite", "--db", str(tmp_path / "r.db"), "--model", "tiny-chat", "--endpoint", server.url,
                     "--attributes", "bold", "--limit", "3", "--config", str(config)]) == 0
        result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        # r1 for each of 3, then r2 for each r1 that is not empty: every text through the endpoint
        assert len(server.requests) == result["generated_texts"] >= 5
        assert server.requests[0]["messages"][0]["role"] == "system" and server.requests[0]["max_tokens"] == 12
    store = Store(tmp_path / "r.db")
    variants = store.variants("rewriter")
    assert result["stored"] >= 1 and len(variants) == 2 * result["stored"]
    assert {e["editor"] for v in variants for e in v["edit_vector"].values()} == {"llm:tiny-chat"}
    store.close()
    assert main(["rewrite", "--db", str(tmp_path / "r.db"), "--model", str(model_dir), "--timeout", "3"]) == 1


def test_generate_and_judge_with_a_local_model_in_process(tmp_path, model_dir, capsys):
    db = fresh_db(tmp_path)
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(PROMPTS[:4]) + "\n")
    assert main(["generate", "--db", str(db), "--prompts", str(prompts), "--model", str(model_dir), "--n", "2",
                 "--temperatures", "1.0", "--max-new-tokens", "10"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["stored"] + summary["empty"] + summary["duplicates"] == 8 and "http" not in summary
    store = Store(db)
    assert {json.loads(r["generation"])["backend"] for r in store._all("SELECT generation FROM responses")} == {
        "transformers"}
    store.close()
    assert main(["judge", "--db", str(db), "--model", str(model_dir), "--labels", "5", "--temperature", "1.0",
                 "--max-new-tokens", "12", "--attempts", "5"]) == 0
    judged = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert judged["group"] == f"llm:{model_dir.name}" and judged["labels"] + judged["skipped_no_verdict"] == 5


def test_greedy_local_generation_is_batched_and_matches_one_at_a_time(model_dir):
    messages = [[{"role": "user", "content": text}] for text in ("a short one", "a much longer request " * 6, "yes")]
    batched = LocalGenerator(model_dir, batch_size=3)
    single = LocalGenerator(model_dir, batch_size=1)
    greedy = Decoding(max_new_tokens=10, temperature=0.0)
    calls = []
    real = batched.model.generate
    batched.model.generate = lambda **kw: calls.append(kw["input_ids"].shape[0]) or real(**kw)
    assert batched.chat(messages, greedy, [0, 0, 0]) == single.chat(messages, greedy, [0, 0, 0])
    assert calls == [3]  # one call for the three


@pytest.mark.parametrize("hostile", ["huge-body", "huge-reply", "lone-surrogate"])
def test_a_hostile_server_stores_nothing_it_should_not(tmp_path, model_dir, prompts_file, capsys, hostile):
    """A reply body over the cap is refused without reading it whole; a reply over the text limit
    or with a lone surrogate fails the import's text checks; none of it is stored."""
    from models.generation import MAX_BODY_BYTES

    db = fresh_db(tmp_path)
    options = {"huge-body": {"pad_bytes": MAX_BODY_BYTES + 10},
               "huge-reply": {"reply_text": "word " * 120_000},
               "lone-surrogate": {"reply_text": "fine until \ud800 here"}}[hostile]
    before = Store(db).counts()
    with FakeOpenAIServer(model_dir, **options) as server:
        code = main(["generate", "--db", str(db), "--prompts", str(prompts_file), "--model", "tiny-chat",
                     "--endpoint", server.url, "--n", "1", "--retries", "0", "--concurrency", "2"])
    captured = capsys.readouterr()
    out = captured.out
    store = Store(db)
    assert store.counts()["base_responses"] == before["base_responses"]  # nothing of it stored
    store.close()
    if hostile == "huge-body":
        assert code == 1 and f"a reply of more than {MAX_BODY_BYTES:,} bytes" in captured.err
    else:
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["refused"] >= 1 and summary["stored"] == 0, summary


def test_a_judge_against_a_dead_server_creates_nothing(tmp_path, model_dir, capsys):
    db = tmp_path / "j.db"
    init_db(db, demo=True)
    before = Store(db).counts()
    with FakeOpenAIServer(model_dir, fail_always=True) as server:
        code = main(["judge", "--db", str(db), "--model", "tiny-chat", "--endpoint", server.url, "--labels", "5",
                     "--retries", "1"])
    assert code == 1 and "HTTP 503" in capsys.readouterr().err
    after = Store(db).counts()
    assert after["annotators"] == before["annotators"] and after["served_pairs"] == before["served_pairs"]


@pytest.mark.parametrize("hostile", [{"status_always": 429}, {"malformed": True}], ids=["429-storm", "malformed-json"])
def test_generate_and_judge_against_a_storm_or_garbage_fail_cleanly_and_store_nothing(tmp_path, model_dir, prompts_file,
                                                                                      capsys, hostile):
    db = fresh_db(tmp_path)
    before = Store(db).counts()
    with FakeOpenAIServer(model_dir, **hostile) as server:
        generated = main(["generate", "--db", str(db), "--prompts", str(prompts_file), "--model", "tiny-chat",
                          "--endpoint", server.url, "--n", "1", "--retries", "1"])
        err = capsys.readouterr().err
        judged = main(["judge", "--db", str(db), "--model", "tiny-chat", "--endpoint", server.url, "--labels", "3",
                       "--retries", "1"])
        err += capsys.readouterr().err
    assert generated == 1 and judged == 1
    assert ("HTTP 429" if "status_always" in hostile else "not JSON") in err and "Traceback" not in err
    assert Store(db).counts() == before
