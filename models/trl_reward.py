"""Reward-model fine-tuning with TRL's ``RewardTrainer``, weighted by the assignment mechanism.

The collected labels carry each pair's arm propensity (the probability the policy gave the
attribute edits that were shown). ``WeightedRewardTrainer`` is TRL's trainer with a per-pair
weight in the Bradley-Terry loss, ``-sum_i w_i log sigmoid(r_chosen - r_rejected - margin_i) /
sum_i w_i``; with every weight 1 it is TRL's loss exactly. ``stabilised_weights`` gives the
stabilised inverse probability of the covariate-dependent part of the design
(``acquisition.weights.design_weights``: exactly 1 for designs whose arms depend on nothing
observed, such as ``randomised_attributes``; Hernán & Robins' stabilised weights, with the arm as
the treatment, elsewhere). ``strength`` (1-3, how sure the annotator was) can be
TRL's ``margin``.

Any local sequence-classification model folder works (``num_labels = 1``); ``accelerate launch``
runs it unchanged on one CPU or many GPUs, since the trainer is transformers' ``Trainer``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from acquisition.core.errors import ConfigError
from acquisition.core.turns import standard_prompt
from acquisition.weights import design_weights

SEPARATOR = "\n\n"  # after a single request (``standard_prompt``): TRL's standard format joins them as they are


def stabilised_weights(rows: pd.DataFrame, clip: float = 20.0) -> np.ndarray:
    """The rows' ``weight`` column where an export carries one, else ``design_weights``: the
    stabilised inverse probability of the covariate-dependent part of the design (exactly 1
    where an arm's probability depends on nothing observed; ``acquisition.weights``)."""
    if "weight" in rows and pd.to_numeric(rows["weight"], errors="coerce").notna().all():
        return pd.to_numeric(rows["weight"]).to_numpy(dtype=float)
    return design_weights(rows, clip)


def reward_dataset(rows: pd.DataFrame, weighting: str = "stabilised", margin: bool = False):
    """A ``datasets.Dataset`` of ``prompt``/``chosen``/``rejected`` (the prompt in the form the
    standard ``trl`` export writes it, ``standard_prompt``: TRL trains on ``prompt + chosen``, so
    this is exactly the text a user's ``RewardTrainer`` reads from that export), ``weight`` and
    optionally ``margin`` (the label's strength, 0 when unset)."""
    import datasets

    if weighting not in ("stabilised", "none"):
        raise ConfigError(f"--weighting: must be 'stabilised' or 'none'; got {weighting!r}.")
    if not len(rows):
        raise ConfigError("No labelled pairs with a winner to train on.")
    data: dict[str, Any] = {
        "prompt": [standard_prompt(p) for p in rows["prompt"]],
        "chosen": list(rows["chosen"]), "rejected": list(rows["rejected"]),
        "weight": (stabilised_weights(rows) if weighting == "stabilised" else np.ones(len(rows))).tolist(),
    }
    if margin:
        data["margin"] = pd.to_numeric(rows["strength"], errors="coerce").fillna(0).astype(float).tolist()
    return datasets.Dataset.from_dict(data)


def _trainer_class():
    from trl import RewardTrainer
    from trl.trainer.reward_trainer import DataCollatorForPreference

    @dataclass
    class WeightedCollator(DataCollatorForPreference):
        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            out = super().torch_call(examples)
            if "weight" in examples[0]:
                out["weight"] = torch.tensor([float(e["weight"]) for e in examples], dtype=torch.float)
            return out

    class WeightedRewardTrainer(RewardTrainer):
        """TRL's ``RewardTrainer`` with a per-pair ``weight`` column in the loss."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            processing_class = kwargs.get("processing_class")
            if kwargs.get("data_collator") is None and processing_class is not None:
                pad = processing_class.pad_token_id if processing_class.pad_token_id is not None else 0
                kwargs["data_collator"] = WeightedCollator(pad_token_id=pad)
            super().__init__(*args, **kwargs)

        def _set_signature_columns_if_needed(self) -> None:
            if self._signature_columns is None:
                self._signature_columns = ["chosen_ids", "rejected_ids", "margin", "weight"]  # type: ignore[assignment]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            weight = inputs.pop("weight", None)
            if weight is None:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            margin = inputs.pop("margin", None)
            inputs["use_cache"] = False
            outputs = model(**inputs)
            chosen, rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
            diff = chosen - rejected - (margin if margin is not None else 0.0)
            weight = weight.to(diff.dtype)
            loss = -(weight * nn.functional.logsigmoid(diff)).sum() / weight.sum().clamp_min(1e-12)
            if self.args.center_rewards_coefficient is not None:
                loss += self.args.center_rewards_coefficient * torch.mean((chosen + rejected) ** 2)
            mode = "train" if self.model.training else "eval"
            with torch.no_grad():
                accuracy = self.accelerator.gather_for_metrics((chosen > rejected).float().mean()).mean().item()
                self._metrics[mode]["accuracy"].append(accuracy)
                self._metrics[mode]["margin"].append(
                    self.accelerator.gather_for_metrics((chosen - rejected).mean()).mean().item())
            return (loss, outputs) if return_outputs else loss

    return WeightedRewardTrainer


def train_reward_model(rows: pd.DataFrame, model_path: str | Path, out: str | Path, weighting: str = "stabilised",
                       margin: bool = False, epochs: float = 1.0, batch_size: int = 8, lr: float = 5e-5,
                       max_length: int | None = 512, seed: int = 0, max_steps: int = -1) -> dict[str, Any]:
    """Fine-tune the sequence-classification model at ``model_path`` on ``rows`` (the ``trl``
    export's rows) and save it with its tokenizer to ``out``; returns the training metrics."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = Path(model_path)
    if not (path / "config.json").is_file():
        raise ConfigError(f"--model {path}: no config.json there (a local transformers model folder).")
    try:
        json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"--model {path}: config.json is not a readable JSON model config ({exc}).") from None
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; give a folder for the model.")
    made = not out.exists()
    try:
        return _train(rows, path, out, weighting, margin, epochs, batch_size, lr, max_length, seed, max_steps)
    except BaseException:
        if made:  # a failed run leaves no half-written model folder behind
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        raise


def _train(rows: pd.DataFrame, path: Path, out: Path, weighting: str, margin: bool, epochs: float, batch_size: int,
           lr: float, max_length: int | None, seed: int, max_steps: int) -> dict[str, Any]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--model {path}: no tokenizer could be loaded there ({exc}).") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if tokenizer.eos_token is None:  # TRL appends EOS to standard-format texts
        tokenizer.eos_token = tokenizer.sep_token or tokenizer.pad_token
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--model {path}: no sequence-classification model could be built from it ({exc}).") from None
    model.config.pad_token_id = tokenizer.pad_token_id
    args = RewardConfig(output_dir=str(out), num_train_epochs=epochs, max_steps=max_steps,
                        per_device_train_batch_size=batch_size, learning_rate=lr, max_length=max_length,
                        seed=seed, report_to=[], save_strategy="no", logging_steps=10, use_cpu=not torch.cuda.is_available(),
                        dataset_num_proc=None, disable_tqdm=True)
    dataset = reward_dataset(rows, weighting, margin)
    overlong = overlong_report(rows, dataset, tokenizer, max_length)
    if overlong["dropped"] == len(rows):
        raise ConfigError(f"--max-length {max_length}: every one of the {len(rows)} pairs is longer; "
                          "nothing would be trained. Raise it.")
    trainer = _trainer_class()(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    result = trainer.train()
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    return {"train_loss": float(result.training_loss), "steps": int(result.global_step), "pairs": len(rows),
            "trained_pairs": len(rows) - overlong["dropped"], "overlong": overlong,
            "weighting": weighting, "margin": margin, "out": str(out)}


def overlong_report(rows: pd.DataFrame, dataset: Any, tokenizer: Any, max_length: int | None) -> dict[str, Any]:
    """The pairs TRL will leave out because ``prompt + chosen`` or ``prompt + rejected`` (with
    its end-of-sequence token) is longer than ``max_length`` tokens, counted, with how often each
    randomised attribute is on in the chosen and rejected responses of the dropped pairs and of
    the kept ones: a drop that selects on an attribute shows here."""
    if max_length is None or not len(rows):
        return {"max_length": max_length, "dropped": 0}
    eos = tokenizer.eos_token or ""

    def length(prompt: str, answer: str) -> int:
        text = prompt + answer
        return len(tokenizer(text if text.endswith(eos) else text + eos)["input_ids"])

    dropped = np.array([max(length(p, c), length(p, r)) > max_length
                        for p, c, r in zip(dataset["prompt"], dataset["chosen"], dataset["rejected"])], bool)
    rates: dict[str, Any] = {}
    for column in sorted(c for c in rows.columns if (c.startswith("chosen_") or c.startswith("rejected_"))
                         and not c.endswith(("_assigned", "_id", "_position", "_edit_vector"))):
        flags = pd.array(rows[column], dtype="boolean")
        def rate(mask: np.ndarray) -> float | None:
            part = flags[mask]
            part = part[~part.isna()]
            return round(float(part.mean()), 4) if len(part) else None
        if (~flags.isna()).any():
            rates[column] = {"dropped": rate(dropped), "kept": rate(~dropped)}
    return {"max_length": max_length, "dropped": int(dropped.sum()), "dropped_share": round(float(dropped.mean()), 4),
            "attribute_rates": rates}
