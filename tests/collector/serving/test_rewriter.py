"""The LLM rewriter, on a tiny randomly initialised GPT-2 built offline in a temp directory."""

import json
from collections import Counter

import numpy as np
import pytest

from acquisition import EXAMPLES
from acquisition.core.config import from_dict, loads_toml
from acquisition.core.errors import ConfigError
from acquisition.policies import AnnotatorContext, build_policy
from acquisition.rewriter import LLMRewriter, RewriterConfig, base_state, load_rewriter_config, rewrite_check
from collector.cli import main
from collector.jobs.rewrite_job import run_rewrite_job
from collector.serving.service import Collector, load_rewrite_pairs
from collector.store import Store

POOL = [
    {"prompt": "How do I boil an egg?", "responses": [
        {"text": "Put the egg in boiling water. Wait nine minutes."},
        {"text": "- Boil water.\n- Add the egg.\n- Wait nine minutes."},
    ]},
    {"prompt": "What is the capital of France?", "responses": [
        {"text": "The capital of France is Paris."}, {"text": "Paris. It has been the capital for centuries."},
    ]},
]


def _save_tiny_model(path, chat_template=None):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}  # one token per byte
    vocab["<|endoftext|>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    if chat_template:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    # no end-of-text id: generation always runs to max_new_tokens, so no rewrite comes back empty;
    # wide initial weights so greedy decoding depends on the input instead of repeating one token
    config = GPT2Config(vocab_size=len(vocab), n_positions=1024, n_layer=2, n_head=2, n_embd=32,
                        bos_token_id=None, eos_token_id=None, initializer_range=0.5)
    GPT2LMHeadModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return _save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-gpt2")


@pytest.fixture(scope="module")
def rewriter(model_dir):
    return LLMRewriter(RewriterConfig(model=str(model_dir), max_new_tokens=12, batch_size=3))


@pytest.fixture
def pool_store():
    s = Store(":memory:")
    s.add_pool(POOL, source="test")
    yield s
    s.close()


def test_loads_a_local_model_by_path(rewriter, model_dir):
    assert rewriter.name == "tiny-gpt2" and rewriter.editor == "llm:tiny-gpt2"
    assert rewriter.context == 1024 and not rewriter.chat  # no chat template: the plain prompt
    prompt = rewriter.prompt("Use bold.", "Q?", "An answer.")
    assert prompt.startswith(rewriter.config.system_prompt) and prompt.endswith("Rewritten response:\n")
    assert "Use bold." in prompt and "Q?" in prompt and "An answer." in prompt


def test_chat_template_is_used_when_the_tokenizer_has_one(tmp_path):
    template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    path = _save_tiny_model(tmp_path / "chatty", chat_template=template)
    chat = LLMRewriter(RewriterConfig(model=str(path), max_new_tokens=4))
    assert chat.chat
    prompt = chat.prompt("Use bold.", "Q?", "An answer.")
    assert prompt.startswith("<|system|>") and "<|user|>Use bold." in prompt and prompt.endswith("<|assistant|>")
    assert len(chat.generate([prompt], seed=0)) == 1
    plain = LLMRewriter(RewriterConfig(model=str(path), use_chat_template=False))
    assert not plain.chat and plain.prompt("x", "y", "z").endswith("Rewritten response:\n")


def test_batched_generation_is_deterministic_under_a_seed(model_dir):
    prompts = [f"Rewrite number {i}: " + "word " * i for i in range(5)]
    greedy = LLMRewriter(RewriterConfig(model=str(model_dir), max_new_tokens=10))
    first = greedy.generate(prompts, seed=0)
    assert len(first) == 5 and all(first)
    assert greedy.generate(prompts, seed=0) == first == greedy.generate(prompts, seed=99)  # greedy ignores it
    sampled = LLMRewriter(RewriterConfig(model=str(model_dir), max_new_tokens=10, greedy=False, temperature=1.0))
    a, b = sampled.generate(prompts, seed=1), sampled.generate(prompts, seed=1)
    assert a == b and sampled.generate(prompts, seed=2) != a


def test_job_stores_rewrite_and_rewrite_of_rewrite(pool_store, rewriter):
    lines = []
    result = run_rewrite_job(pool_store, rewriter, ["list_format", "bold"], progress=lines.append)
    assert result["stored"] == 8 and result["generated_texts"] == 16  # 4 responses x 2 attributes
    assert result["too_long"] == result["empty"] == 0
    assert len(lines) == 3 and lines[-1].startswith("rewrite: batch 3/3  8/8 pairs") and "texts/s" in lines[0]
    rows = {r["id"]: r for r in pool_store.variants("rewriter")}
    assert len(rows) == 16
    base_text = pool_store.pool_snapshot().response_text
    seconds = [r for r in rows.values() if next(iter(r["edit_vector"].values()))["round"] == 2]
    assert len(seconds) == 8
    for r2 in seconds:
        (attribute, e2), = r2["edit_vector"].items()
        r1 = rows[e2["source_response_id"]]
        e1 = r1["edit_vector"][attribute]
        x = base_text[r2["parent_response_id"]]
        assert r1["parent_response_id"] == r2["parent_response_id"]  # both are variants of x
        assert e1["on"] == (not base_state(attribute, x)) and e2["on"] == base_state(attribute, x)
        assert e1["direction"] == ("add" if e1["on"] else "remove") and e1["round"] == 1
        assert e1["editor"] == e2["editor"] == "llm:tiny-gpt2"
        assert e1["generation"] == {"max_new_tokens": 12, "greedy": True}
        assert e1["instruction"] == (rewriter.config.instruction(attribute).add if e1["on"]
                                     else rewriter.config.instruction(attribute).remove)
        assert r1["manipulation_check"] == rewrite_check(attribute, x, r1["text"], e1["on"])
        assert r2["manipulation_check"] == rewrite_check(attribute, r1["text"], r2["text"], e2["on"])
    # the bulleted base response has the list already: its rewrite removes it, and is rewritten back
    listed = next(rid for rid, t in base_text.items() if t.startswith("- "))
    r1_listed = [r for r in rows.values() if r["parent_response_id"] == listed and "list_format" in r["edit_vector"]
                 and r["edit_vector"]["list_format"]["round"] == 1]
    assert [r["edit_vector"]["list_format"]["direction"] for r in r1_listed] == ["remove"]
    assert pool_store.get_meta("rewrite_version") == "3"


def test_job_resumes_without_duplicating(pool_store, rewriter):
    assert run_rewrite_job(pool_store, rewriter, ["emoji"], limit=3)["stored"] == 3
    again = run_rewrite_job(pool_store, rewriter, ["emoji"])
    assert again["stored"] == 1 and again["skipped_done"] == 3
    last = run_rewrite_job(pool_store, rewriter, ["emoji"])
    assert last["stored"] == 0 and last["skipped_done"] == 4 and last["generated_texts"] == 0
    assert len(pool_store.variants("rewriter")) == 8
    assert len(load_rewrite_pairs(pool_store)) == 4


def test_a_failing_batch_stores_nothing_of_itself(pool_store, rewriter, monkeypatch):
    real, calls = pool_store.add_variant, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 9:  # the 5th pair: second batch, after two of its rows were written
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(pool_store, "add_variant", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        run_rewrite_job(pool_store, rewriter, ["bold", "hedging"])
    assert len(pool_store.variants("rewriter")) == 6  # the first batch (3 pairs), nothing of the second


def test_empty_and_too_long_rewrites_are_counted_not_stored(pool_store, model_dir, monkeypatch):
    long = LLMRewriter(RewriterConfig(model=str(model_dir), max_new_tokens=1000))
    assert run_rewrite_job(pool_store, long, ["bold"])["too_long"] == 4
    short = LLMRewriter(RewriterConfig(model=str(model_dir), max_new_tokens=4, batch_size=4))
    monkeypatch.setattr(short, "generate", lambda prompts, seed: ["" if i == 1 else "ok text" for i in range(len(prompts))])
    result = run_rewrite_job(pool_store, short, ["bold"])
    assert result["empty"] == 2 and result["stored"] == 2  # one empty r1, one empty r2 (of the remaining three)
    assert len(pool_store.variants("rewriter")) == 4


def _rewrite_policy(store, attributes=("bold", "list_format")):
    return build_policy("counterfactual_pairs", {"source": "rewrites", "attributes": list(attributes)},
                        store.pool_snapshot(), rewrite_pairs=load_rewrite_pairs(store))


def test_counterfactual_pairs_serves_rewrite_vs_rewrite_of_rewrite(pool_store, rewriter):
    run_rewrite_job(pool_store, rewriter, ["bold", "list_format", "emoji"])
    pairs = {frozenset((p.first_response_id, p.second_response_id)): p for p in load_rewrite_pairs(pool_store)}
    policy = _rewrite_policy(pool_store)
    rng, annotator = np.random.default_rng(0), AnnotatorContext(1)
    seen, counts, n = {}, Counter(), 20000
    for _ in range(n):
        p = policy.propose(annotator, rng)
        pair = pairs[frozenset((p.left.response_id, p.right.response_id))]
        assert pair.attribute in ("bold", "list_format")  # emoji is not configured
        assert p.left.base_response_id == p.right.base_response_id == pair.base_response_id
        first = p.right if p.position_swapped else p.left
        assert first.response_id == pair.first_response_id and p.arm == f"rewrite:{pair.attribute}"
        key = (p.left.response_id, p.right.response_id)
        assert seen.setdefault(key, p.propensity_score) == pytest.approx(p.propensity_score)
        assert policy.propensity_of(annotator, p.prompt_id, p.left, p.right) == pytest.approx(
            (p.propensity_score, p.arm_propensity))
        counts[key] += 1
    assert len(seen) == 16  # 8 pairs x 2 positions
    assert sum(seen.values()) == pytest.approx(1.0, abs=1e-12)
    for key, prop in seen.items():
        assert counts[key] / n == pytest.approx(prop, abs=4 * (prop / n) ** 0.5)
    # rule-based minimal pairs are not this policy's outcomes, nor are rewrites the editors' outcomes
    editors = build_policy("counterfactual_pairs", {"attributes": ["bold", "exclamation"]}, pool_store.pool_snapshot())
    some = policy.propose(annotator, rng)
    assert editors.propensity_of(annotator, some.prompt_id, some.left, some.right) == (0.0, 0.0)
    rule = editors.propose(annotator, rng)
    assert policy.propensity_of(annotator, rule.prompt_id, rule.left, rule.right) == (0.0, 0.0)


def test_mixture_adds_up_rewrite_propensities(pool_store, rewriter):
    run_rewrite_job(pool_store, rewriter, ["bold"])
    mixture = build_policy("mixture", {"components": [
        {"name": "randomised_attributes", "weight": 3, "config": {"attributes": ["bold"]}},
        {"name": "counterfactual_pairs", "weight": 1, "config": {"source": "rewrites", "attributes": ["bold"]}},
    ]}, pool_store.pool_snapshot(), rewrite_pairs=load_rewrite_pairs(pool_store))
    rng = np.random.default_rng(3)
    proposals = [mixture.propose(AnnotatorContext(1), rng) for _ in range(200)]
    rewrites = [p for p in proposals if p.left.response_id is not None]
    assert rewrites and all(p.propensity_score == pytest.approx(0.25 * 0.5 / 4) for p in rewrites)


def test_collector_records_the_stored_rewrites_as_served(pool_store, rewriter):
    run_rewrite_job(pool_store, rewriter, ["bold"])
    pool_store.activate_policy("counterfactual_pairs", {"source": "rewrites", "attributes": ["bold", "emoji"]})
    collector = Collector(pool_store, seed=0)
    annotator, _ = pool_store.add_annotator("a")
    responses_before = pool_store.counts()["edited_responses"]
    view = collector.next_pair(annotator["id"])
    served = pool_store.served_pair(view.served_pair_id)
    stored = {r["id"]: r for r in pool_store.variants("rewriter")}
    left, right = stored[served["left_response_id"]], stored[served["right_response_id"]]
    assert (view.left_text, view.right_text) == (left["text"], right["text"])
    served_vector = served["left_edit_vector"]
    assert {a: {k: v for k, v in e.items() if k not in ("applies", "realised")} for a, e in served_vector.items()} \
        == left["edit_vector"]
    check = left["manipulation_check"]  # the treatment received is the rewrite's own check
    assert all(e["realised"] == (e["on"] == check.get(a, True)) for a, e in served_vector.items())
    assert served["left_base_response_id"] == left["parent_response_id"] == right["parent_response_id"]
    assert served["arm"] == "rewrite:bold" and served["propensity_score"] == pytest.approx(0.5 / 4)
    assert pool_store.counts()["edited_responses"] == responses_before  # nothing generated on the request path
    collector.submit(annotator["id"], view.served_pair_id, "left")
    # rewrites stored later reach the running collector's cached policy (same policy version)
    run_rewrite_job(pool_store, rewriter, ["emoji"])
    arms = set()
    for _ in range(30):
        pair = collector.next_pair(annotator["id"])
        arms.add(pool_store.served_pair(pair.served_pair_id)["arm"])
        collector.submit(annotator["id"], pair.served_pair_id, "tie")
    assert arms == {"rewrite:bold", "rewrite:emoji"}


def test_rewrites_source_without_stored_pairs_says_what_to_run(pool_store):
    with pytest.raises(ConfigError, match=r"no stored rewrite pairs for bold.*python -m collector rewrite"):
        _rewrite_policy(pool_store, ["bold"])


@pytest.mark.parametrize("config,field", [
    ({"source": "llm"}, "config.source"),
    ({"source": "rewrites", "attributes": []}, "config.attributes"),
])
def test_counterfactual_source_config_errors(config, field):
    from acquisition.policies import parse_policy_config

    with pytest.raises(ConfigError, match=field):
        parse_policy_config("counterfactual_pairs", config)


def test_missing_or_invalid_model_path_names_what_is_missing(tmp_path, model_dir):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError, match=f"{missing}: no such directory"):
        LLMRewriter(RewriterConfig(model=str(missing)))
    half = tmp_path / "half"
    half.mkdir()
    (half / "tokenizer.json").write_text((model_dir / "tokenizer.json").read_text())
    with pytest.raises(ConfigError, match=rf"{half}: not a transformers model directory; missing config.json, "
                                          r"model weights"):
        LLMRewriter(RewriterConfig(model=str(half)))
    (tmp_path / "file.bin").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        LLMRewriter(RewriterConfig(model=str(tmp_path / "file.bin")))
    with pytest.raises(ConfigError, match="No rewriter model: pass --model"):
        LLMRewriter(RewriterConfig())


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"r.toml.attributes\[1\]: no instruction for attribute 'sparkle'"):
        from_dict(RewriterConfig, loads_toml('attributes = ["bold", "sparkle"]'), "r.toml")
    with pytest.raises(ConfigError, match=r"r.toml.user_template: bad placeholder .*\{instruction\}"):
        from_dict(RewriterConfig, {"user_template": "{text}"}, "r.toml")
    with pytest.raises(ConfigError, match=r"r.toml.top_p: must be in \(0, 1\]"):
        from_dict(RewriterConfig, {"top_p": 0.0}, "r.toml")
    config = from_dict(RewriterConfig, loads_toml(
        'attributes = ["formal_tone"]\n[instructions.formal_tone]\nadd = "Be formal."\nremove = "Be casual."'), "r")
    assert config.instruction("formal_tone").add == "Be formal."
    assert base_state("formal_tone", "Hi.") is False and rewrite_check("formal_tone", "a", "b", True) == {}


def test_example_config_loads():

    path = EXAMPLES / "rewriter" / "rewriter.toml"
    config = load_rewriter_config(path)
    assert config.model == "" and "formal_tone" in config.instructions and config.greedy


def test_manipulation_check_reads_the_rule_based_measure():
    assert base_state("list_format", "- a\n- b") and not base_state("list_format", "A. B.")
    assert rewrite_check("list_format", "A. B.", "- A.\n- B.", True) == {"list_format": True}
    assert rewrite_check("list_format", "- A.\n- B.", "- A.\n- B.", False) == {"list_format": False}
    # verbosity measures an amount (words): the base counts as off and the rewrite must move it
    assert not base_state("verbosity", "Some words here.")
    assert rewrite_check("verbosity", "One two.", "One two three four.", True) == {"verbosity": True}
    assert rewrite_check("verbosity", "One two three four.", "One two.", False) == {"verbosity": True}
    assert rewrite_check("verbosity", "One two.", "One.", True) == {"verbosity": False}
    # a positive control is checked against the source, by its editor's own check
    answer = "Boil the egg for nine minutes. Then cool it in cold water."
    assert rewrite_check("drop_answer", answer, "Then cool it in cold water.", True) == {"drop_answer": True}
    assert rewrite_check("drop_answer", answer, answer, True) == {"drop_answer": False}


def test_cli_rewrite_command(tmp_path, model_dir, capsys):
    db = str(tmp_path / "x.db")
    assert main(["init", "--demo", "--db", db]) == 0
    capsys.readouterr()
    cfg = tmp_path / "r.toml"
    cfg.write_text("max_new_tokens = 6\nbatch_size = 2\n")
    args = ["rewrite", "--db", db, "--model", str(model_dir), "--attributes", "bold,emoji", "--config", str(cfg)]
    assert main([*args, "--limit", "3"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["stored"] == 3
    assert "rewrite: batch 1/2  2/3 pairs" in out.err and "rewrite: batch 2/2  3/3 pairs" in out.err
    assert main([*args, "--limit", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped_done"] == 3
    assert main(["rewrite", "--db", db, "--model", str(tmp_path / "nowhere")]) == 1
    assert f"{tmp_path / 'nowhere'}: no such directory" in capsys.readouterr().err
    assert main(["rewrite", "--db", db, "--model", str(model_dir), "--attributes", "bold,sparkle"]) == 1
    assert "--attributes[1]: no instruction for attribute 'sparkle'" in capsys.readouterr().err
