"""Weighted reward training with TRL: the weights enter the loss as they should, and the
command fine-tunes a local model on collected labels (a tiny random BERT built from a config)."""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

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


def test_stabilised_weights_undo_the_propensity_within_each_version():
    rows = _rows()
    w = stabilised_weights(rows)
    for v in (1, 2):
        assert w[rows.policy_version == v].mean() == pytest.approx(1.0)
    # arm b was shown with a fifth of arm a's propensity: each of its labels counts 5x / its share
    assert w[2] / w[0] == pytest.approx((1 / 3 / 0.05) / (2 / 3 / 0.25))
    assert np.allclose(stabilised_weights(rows.assign(arm_propensity=0.2, arm="a")), 1.0)


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
