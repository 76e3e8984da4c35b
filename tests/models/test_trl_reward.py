"""Weighted reward training with TRL: the weights enter the loss as they should, and the
command fine-tunes a local model on collected labels (a tiny random BERT built from a config)."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from acquisition.weights import design_weights
from models.embeddings import model_path
from models.trl_reward import SEPARATOR, _trainer_class, reward_dataset, stabilised_weights


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-rm")
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=64, num_labels=1)
                                  ).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        if (model_path() / name).exists():
            shutil.copy(model_path() / name, folder / name)
    return folder


def _rows(n=12):
    return pd.DataFrame({
        "prompt": [f"Question {i}?" for i in range(n)], "chosen": [f"A helpful answer {i}." for i in range(n)],
        "rejected": [f"No {i}." for i in range(n)], "strength": [1 + i % 3 for i in range(n)],
        "policy_version": [1] * (n // 2) + [2] * (n - n // 2),
        "arm": [["a", "a", "b"][i % 3] for i in range(n)],
        "arm_propensity": [[0.25, 0.25, 0.05][i % 3] for i in range(n)]})


def test_weights_are_exactly_one_where_the_design_depends_on_nothing_observed():
    rows = _rows()  # each arm logged one propensity in its version: a design of coin flips
    assert (stabilised_weights(rows) == 1.0).all()
    # the old weights divided each arm's share among the rows by its propensity: not 1 here
    assert (design_weights(rows.assign(arm_propensity=[0.25, 0.3, 0.05] * 4)) != 1.0).any()


def test_weights_undo_a_covariate_dependent_design_as_an_independent_recomputation_does():
    """A design where an attribute's arm depends on the annotator group (p(on | A) = 0.8,
    p(on | B) = 0.2, groups 70/30): w = p̄(arm) / p(arm | group), with p̄ computed from the
    design itself, not from the rows."""
    rng = np.random.default_rng(0)
    n = 40_000
    group = rng.choice(["A", "B"], size=n, p=[0.7, 0.3])
    p_on = np.where(group == "A", 0.8, 0.2)
    on = rng.random(n) < p_on
    rows = pd.DataFrame({"policy": "overlap_targeting", "policy_version": 3, "arm": np.where(on, "on", "off"),
                         "arm_propensity": np.where(on, p_on, 1 - p_on)})
    w = design_weights(rows)
    p_bar_on = 0.7 * 0.8 + 0.3 * 0.2
    exact = np.where(on, p_bar_on / p_on, (1 - p_bar_on) / (1 - p_on))
    assert np.abs(w / exact - 1).max() < 0.02  # the arm's share estimates p̄ to ~0.5% at this n
    assert w.mean() == pytest.approx(1.0, abs=0.01)
    # weighted, the arm no longer depends on the group: the design's average mix in both
    for g in ("A", "B"):
        here = group == g
        assert np.average(on[here], weights=w[here]) == pytest.approx(p_bar_on, abs=0.02)


def test_the_weights_change_the_loss_as_they_should(tiny_model, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.eos_token = tokenizer.sep_token
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=1).eval()
    args = RewardConfig(output_dir=str(tmp_path / "o"), report_to=[], use_cpu=True, disable_tqdm=True)
    data = reward_dataset(_rows(4), margin=False)
    assert data[0]["prompt"].endswith(SEPARATOR)
    trainer = _trainer_class()(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    plain = RewardTrainer(model=model, args=args, train_dataset=data.remove_columns("weight"), processing_class=tokenizer)

    def loss(weights):
        inputs = {k: v.clone() for k, v in batch.items()}
        inputs["weight"] = torch.tensor(weights, dtype=torch.float)
        with torch.no_grad():
            return float(trainer.compute_loss(model, inputs))

    with torch.no_grad():
        unweighted = float(plain.compute_loss(model, {k: v.clone() for k, v in batch.items() if k != "weight"}))
    assert loss([1, 1, 1, 1]) == pytest.approx(unweighted, rel=1e-5)  # TRL's loss exactly
    singles = [loss([1.0 if j == i else 0.0 for j in range(4)]) for i in range(4)]
    assert len(set(np.round(singles, 6))) > 1
    assert loss([3, 1, 0, 0]) == pytest.approx((3 * singles[0] + singles[1]) / 4, rel=1e-5)


def test_train_rm_fine_tunes_a_local_model_on_collected_labels(tiny_model, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from collector.cli import main
    from collector.jobs.simulate import simulate
    from collector.store import Store
    from collector.store.create import init_db

    db = tmp_path / "d.db"
    init_db(db, demo=True)
    store = Store(db)
    simulate(store, labels=40, seed=0)
    store.close()
    out = tmp_path / "rm"
    main(["train-rm", "--db", str(db), "--model", str(tiny_model), "--out", str(out), "--max-steps", "3",
          "--batch-size", "4", "--margin"])
    trained = AutoModelForSequenceClassification.from_pretrained(out)
    before = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=1)
    assert not torch.allclose(trained.classifier.weight, before.classifier.weight)


def test_train_rm_reads_the_text_the_trl_export_gives_a_user_and_reports_what_is_too_long(tiny_model, tmp_path, capsys):
    """TRL joins ``prompt + chosen`` as they are: the export's prompt ends where the answer starts
    (a blank line; a dialogue's assistant marker), train-rm builds the same texts, and the pairs
    TRL drops for length are counted with the attribute rates of what was dropped."""
    from collector.cli import main
    from collector.io.export import export
    from collector.jobs.simulate import simulate
    from collector.store import Store
    from collector.store.create import init_db

    db = tmp_path / "d.db"
    init_db(db, demo=True)
    store = Store(db)
    simulate(store, labels=40, seed=0)
    export(store, "trl", tmp_path / "t.jsonl")
    store.close()
    exported = pd.read_json(tmp_path / "t.jsonl", lines=True)
    assert all(p.endswith(("\n\n", "\n\nAssistant: ")) for p in exported["prompt"])
    from collector.io.frames import pairs_frame, trl_frame
    rows = trl_frame(pairs_frame(Store(db, readonly=True)))
    data = reward_dataset(rows)
    assert sorted(p + c for p, c in zip(data["prompt"], data["chosen"])) == sorted(
        p + c for p, c in zip(exported["prompt"], exported["chosen"]))
    assert main(["train-rm", "--db", str(db), "--model", str(tiny_model), "--out", str(tmp_path / "rm"),
                 "--max-steps", "1", "--batch-size", "4", "--max-length", "128"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()  # the trainer's own log lines come first
    result = json.loads("\n".join(lines[max(i for i, line in enumerate(lines) if line == "{"):]))
    overlong = result["overlong"]
    assert 0 < overlong["dropped"] < len(rows) and result["trained_pairs"] == len(rows) - overlong["dropped"]
    assert "longer than --max-length 128" in captured.err
    assert {"dropped", "kept"} <= set(next(iter(overlong["attribute_rates"].values())))
