"""Reward models over [prompt, response] embeddings, trained on pairwise labels.

Every model is a small deep ensemble (Lakshminarayanan et al., 2017) of MLPs so it reports
epistemic uncertainty; ties are 0.5 targets of the Bradley-Terry likelihood.

- ``bt_mlp``: Bradley-Terry over an MLP (Ouyang et al., 2022): the baseline.
- ``multihead``: shared trunk, one head per annotator group, so opposite group preferences
  are not averaged away.
- ``adversarial``: multihead plus a group discriminator on the shared representation,
  trained through gradient reversal (Ganin & Lempitsky, 2015), as in Kobalczyk & van der
  Schaar, *Preference Learning for AI Alignment: a Causal Perspective* (ICML 2025).
- ``counterfactual_augmented``: uses the counterfactual structure of interventional data
  (RRM, Liu et al., 2024; Crome, 2025): edit-only pairs judged as ties are tie constraints
  with extra weight, edit-only contrasts are down-weighted, and an invariance penalty keeps
  the reward of an edited copy equal to its parent's for quality-neutral (spurious) edits only:
  a positive control (``drop_answer``, ``off_topic``) really changes quality and is not held back.

Any model can weight pairs by inverse propensity (``ipw = true``).
"""

from __future__ import annotations

import copy
from abc import ABC
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from acquisition.core.errors import ConfigError

REWARD_MODELS: dict[str, type["RewardModel"]] = {}


def register_model(cls: type["RewardModel"]) -> type["RewardModel"]:
    REWARD_MODELS[cls.name] = cls
    return cls


@dataclass
class PairData:
    """Labelled pairs as arrays. ``n`` pairs, embedding width ``d``.

    ``target`` is P(first preferred): 1, 0 or 0.5 for a tie. ``first_parent`` /
    ``second_parent`` hold the base response's embedding for edited copies (else the response's
    own), ``same_base`` marks edit-only pairs (one base response, different edits), and
    ``first_neutral`` / ``second_neutral`` mark sides whose edits are all quality-neutral (no
    positive control switched on): only those are held to their parent's reward.
    """

    prompt: np.ndarray  # `(n, d)`
    first: np.ndarray  # `(n, d)`
    second: np.ndarray  # `(n, d)`
    target: np.ndarray  # `(n,)` in {0, 0.5, 1}
    group: np.ndarray  # `(n,)` int group index
    propensity: np.ndarray | None = None  # `(n,)` arm propensity, for IPW
    same_base: np.ndarray | None = None  # `(n,)` bool
    first_parent: np.ndarray | None = None  # `(n, d)`
    second_parent: np.ndarray | None = None  # `(n, d)`
    group_names: list[str] = field(default_factory=lambda: ["default"])
    first_neutral: np.ndarray | None = None  # `(n,)` bool; None: every side neutral
    second_neutral: np.ndarray | None = None  # `(n,)` bool

    def __len__(self) -> int:
        return len(self.target)

    def subset(self, idx: np.ndarray) -> "PairData":
        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        return PairData(self.prompt[idx], self.first[idx], self.second[idx], self.target[idx],
                        self.group[idx], pick(self.propensity), pick(self.same_base),
                        pick(self.first_parent), pick(self.second_parent), self.group_names,
                        pick(self.first_neutral), pick(self.second_neutral))


@dataclass
class ModelConfig:
    hidden: int = 64  # width of the shared trunk
    ensemble: int = 4  # members of the deep ensemble (uncertainty = their disagreement)
    epochs: int = 10
    batch_size: int = 512
    lr: float = 3e-3
    weight_decay: float = 1e-4
    dropout: float = 0.1
    ipw: bool = False  # weight each pair by 1 / arm propensity (normalised, clipped at 20)
    adversary_weight: float = 0.5  # adversarial: strength of the gradient reversal
    tie_weight: float = 2.0  # counterfactual_augmented: weight of edit-only ties
    edit_only_weight: float = 0.5  # counterfactual_augmented: weight of edit-only contrasts
    invariance_weight: float = 1.0  # counterfactual_augmented: (r(edit) - r(parent))^2 penalty
    # step-based training: this many optimiser steps on random batches (0: `epochs` passes)
    steps: int = 0
    # hold out `validation_share` of the training labels, check their loss every `eval_every`
    # steps (each epoch when epoch-based), keep the best weights and stop after `patience` checks
    # without improvement
    early_stopping: bool = False
    validation_share: float = 0.15
    eval_every: int = 25
    patience: int = 8

    def validate(self, where: str = "model") -> None:
        for key in ("hidden", "ensemble", "epochs", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key}: must be at least 1; got {getattr(self, key)}.")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"{where}.dropout: must be in [0, 1); got {self.dropout}.")
        if self.lr <= 0:
            raise ConfigError(f"{where}.lr: must be positive; got {self.lr}.")
        if self.steps < 0 or self.eval_every < 1 or self.patience < 1:
            raise ConfigError(f"{where}: steps >= 0, eval_every >= 1 and patience >= 1 are required.")
        if not 0 < self.validation_share < 0.5:
            raise ConfigError(f"{where}.validation_share: must be in (0, 0.5); got {self.validation_share}.")


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


class EnsembleNet(nn.Module):
    """``E`` independent MLPs evaluated in one batched pass.

    Trunk over `[prompt, response]` `(b, 2d)` -> `(E, b, hidden)`, then one reward head per
    group `(E, b, heads)`; an optional group discriminator reads the trunk features.
    """

    def __init__(self, members: int, dim: int, hidden: int, heads: int, dropout: float,
                 groups_for_adversary: int = 0, extra_inputs: int = 0, interact_groups: int = 0):
        super().__init__()
        # a conditioned net: the prompt input ends with the group's one-hot, and the trunk also
        # reads one-hot (x) response, so each group gets its own linear map of the response
        self.interact_groups = interact_groups
        extra_inputs += interact_groups * dim

        def init(fan_in: int, fan_out: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(members, fan_in, fan_out) / fan_in**0.5)

        self.w1, self.b1 = init(2 * dim + extra_inputs, hidden), nn.Parameter(torch.zeros(members, 1, hidden))
        self.w2, self.b2 = init(hidden, hidden), nn.Parameter(torch.zeros(members, 1, hidden))
        self.wh, self.bh = init(hidden, heads), nn.Parameter(torch.zeros(members, 1, heads))
        self.dropout = nn.Dropout(dropout)
        self.adversary = None
        if groups_for_adversary > 1:
            self.adversary = nn.ParameterList([init(hidden, groups_for_adversary),
                                               nn.Parameter(torch.zeros(members, 1, groups_for_adversary))])

    def _first_layer(self, x: torch.Tensor, rows: slice) -> torch.Tensor:
        """``x @ w1[:, rows]`` for every member as one matrix product, `(b, n)` -> `(b, E, hidden)`."""
        members, _, hidden = self.w1.shape
        w = self.w1[:, rows].permute(1, 0, 2).reshape(-1, members * hidden)
        return (x @ w).view(len(x), members, hidden)

    def prompt_part(self, prompt: torch.Tensor) -> torch.Tensor:
        """The prompt's share of the first layer, `(b, E, hidden)`: computed once for the two
        responses of a pair (``forward(..., prompt_part=)``); the first layer reads
        `[prompt, response, group one-hot (x) response]` through one weight matrix, so its
        product splits by those blocks."""
        return self._first_layer(prompt, slice(0, prompt.shape[-1]))

    def forward(self, prompt: torch.Tensor, response: torch.Tensor,
                prompt_part: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        n_prompt = prompt.shape[-1]
        pre = self.prompt_part(prompt) if prompt_part is None else prompt_part
        x = response  # `(b, d)`
        if self.interact_groups:
            c = prompt[..., -self.interact_groups:]  # the group's one-hot
            x = torch.cat([x, (c[:, :, None] * response[:, None, :]).flatten(1)], dim=-1)
        pre = pre + self._first_layer(x, slice(n_prompt, None))
        h = nn.functional.gelu(pre.transpose(0, 1).contiguous() + self.b1)  # `(E, b, hidden)`
        h = nn.functional.gelu(torch.bmm(self.dropout(h), self.w2) + self.b2)  # `(E, b, hidden)`
        return torch.bmm(h, self.wh) + self.bh, h  # `(E, b, heads)`, `(E, b, hidden)`

    def discriminate(self, h: torch.Tensor) -> torch.Tensor:
        w, b = self.adversary  # type: ignore[misc]
        return torch.bmm(h, w) + b  # `(E, b, groups)`


class RewardModel(ABC):
    """Contract: ``fit(data)``, ``reward(prompt, response, group) -> (mean, std)`` and
    ``preference(prompt, first, second, group) -> (P(first preferred), ensemble std)``; the state
    round-trips through ``state()`` / ``from_state``."""

    name: ClassVar[str]
    description: ClassVar[str]
    per_group: ClassVar[bool] = False
    adversarial: ClassVar[bool] = False
    counterfactual: ClassVar[bool] = False
    # the group (objective c) is an input: its one-hot beside the prompt, and interacting with the
    # response embedding (one-hot (x) response), so the reward of a response can differ by group
    conditioned: ClassVar[bool] = False

    def __init__(self, config: ModelConfig, dim: int, group_names: list[str]) -> None:
        config.validate()
        self.config, self.dim, self.group_names = config, dim, list(group_names)
        heads = len(self.group_names) if self.per_group else 1
        adv = len(self.group_names) if self.adversarial else 0
        extra = len(self.group_names) if self.conditioned else 0
        self.net = EnsembleNet(config.ensemble, dim, config.hidden, heads, config.dropout, adv, extra,
                               interact_groups=extra)

    def _input(self, prompt: torch.Tensor, group: torch.Tensor | None) -> torch.Tensor:
        """The prompt as the net reads it: with the group one-hot appended when conditioned."""
        if not self.conditioned:
            return prompt
        assert group is not None, "a conditioned model needs the group"
        return torch.cat([prompt, nn.functional.one_hot(group, len(self.group_names)).to(prompt.dtype)], dim=-1)

    # ------------------------------------------------------------------ training
    def _weights(self, data: PairData) -> np.ndarray:
        w = np.ones(len(data), dtype=np.float32)
        if self.config.ipw and data.propensity is not None:
            ipw = 1.0 / np.clip(data.propensity, 1e-12, 1.0)
            w = np.minimum(ipw / ipw.mean(), 20.0).astype(np.float32)
        if self.counterfactual and data.same_base is not None:
            edit_only = data.same_base.astype(bool)
            w = w * np.where(edit_only & (data.target == 0.5), self.config.tie_weight,
                             np.where(edit_only, self.config.edit_only_weight, 1.0)).astype(np.float32)
        return w

    def fit(self, data: PairData, seed: int = 0) -> dict[str, float]:
        """Train all ensemble members at once; each sees the data under its own Poisson(1)
        bootstrap weights, so members disagree where the data are thin."""
        if len(data) == 0:
            raise ConfigError("No labelled pairs to train on.")
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        boot = rng.poisson(1.0, size=(self.config.ensemble, len(data))).astype(np.float32)
        t = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in {
            "prompt": data.prompt, "first": data.first, "second": data.second,
            "target": data.target, "weight": boot * self._weights(data)[None, :],
        }.items()}
        t["group"] = torch.as_tensor(data.group, dtype=torch.long)
        if self.counterfactual and data.first_parent is not None and data.second_parent is not None:
            t["first_parent"] = torch.as_tensor(data.first_parent, dtype=torch.float32)
            t["second_parent"] = torch.as_tensor(data.second_parent, dtype=torch.float32)
            everywhere = np.ones(len(data), dtype=np.float32)
            for side in ("first", "second"):
                neutral = getattr(data, f"{side}_neutral")
                t[f"{side}_neutral"] = torch.as_tensor(everywhere if neutral is None else neutral, dtype=torch.float32)
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        cfg = self.config
        train_idx = torch.arange(len(data))
        val_idx = None
        if cfg.early_stopping and len(data) >= 20:  # a held-out slice of the training labels
            order = torch.as_tensor(rng.permutation(len(data)))
            n_val = max(4, int(len(data) * cfg.validation_share))
            val_idx, train_idx = order[:n_val], order[n_val:]
        best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        checks_without_gain, step = 0, 0
        loss = torch.zeros(())

        def batches():
            if cfg.steps:
                for _ in range(cfg.steps):
                    yield train_idx[torch.randint(len(train_idx), (min(cfg.batch_size, len(train_idx)),))], False
            else:
                for _ in range(cfg.epochs):
                    parts = train_idx[torch.randperm(len(train_idx))].split(cfg.batch_size)
                    for k, batch in enumerate(parts):
                        yield batch, k == len(parts) - 1

        self.net.train()
        for batch, epoch_end in batches():
            loss = self._loss(t, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if val_idx is not None and ((cfg.steps and step % cfg.eval_every == 0) or (not cfg.steps and epoch_end)):
                current = self._validation_loss(t, val_idx)
                if best is None or current < best[0] - 1e-4:
                    best = (current, step, copy.deepcopy(self.net.state_dict()))
                    checks_without_gain = 0
                else:
                    checks_without_gain += 1
                    if checks_without_gain >= cfg.patience:
                        break
        stats = {"train_loss": float(loss.detach()), "pairs": float(len(data)), "steps": float(step)}
        if best is not None:
            self.net.load_state_dict(best[2])
            stats.update({"best_step": float(best[1]), "validation_loss": round(best[0], 4)})
        self.net.eval()
        return stats

    def _validation_loss(self, t: dict[str, torch.Tensor], idx: torch.Tensor) -> float:
        """Bradley-Terry loss of the ensemble's mean reward difference on held-out labels."""
        self.net.eval()
        with torch.no_grad():
            g = t["group"][idx]
            prompt = self._input(t["prompt"][idx], g)
            shared = self.net.prompt_part(prompt)
            r1 = self._pick(self.net(prompt, t["first"][idx], shared)[0], g).mean(dim=0)
            r2 = self._pick(self.net(prompt, t["second"][idx], shared)[0], g).mean(dim=0)
            value = float(nn.functional.binary_cross_entropy_with_logits(r1 - r2, t["target"][idx]))
        self.net.train()
        return value

    def _pick(self, out: torch.Tensor, group: torch.Tensor | None) -> torch.Tensor:
        """`(E, b, heads)` -> `(E, b)`: the annotator's group head, or the heads' mean."""
        if self.per_group and group is not None:
            return out.gather(2, group[None, :, None].expand(out.shape[0], -1, 1)).squeeze(2)
        return out.mean(dim=2)

    def _loss(self, t: dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
        g = t["group"][idx]
        prompt = self._input(t["prompt"][idx], g)
        shared = self.net.prompt_part(prompt)  # once for both responses (and their parents)
        out1, h1 = self.net(prompt, t["first"][idx], shared)
        out2, h2 = self.net(prompt, t["second"][idx], shared)
        r1, r2 = self._pick(out1, g), self._pick(out2, g)  # `(E, b)`
        w = t["weight"][:, idx]  # `(E, b)`
        target = t["target"][idx].expand_as(r1)
        bt = nn.functional.binary_cross_entropy_with_logits(r1 - r2, target, reduction="none")
        loss = (w * bt).sum() / w.sum().clamp_min(1e-6)
        if self.adversarial and self.net.adversary is not None:
            h = torch.cat([h1, h2], dim=1)  # `(E, 2b, hidden)`
            logits = self.net.discriminate(_GradReverse.apply(h, self.config.adversary_weight))
            labels = torch.cat([g, g]).expand(logits.shape[0], -1)
            loss = loss + nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        if "first_parent" in t:  # invariance: a neutral edit keeps its parent's reward
            base1, _ = self.net(prompt, t["first_parent"][idx], shared)
            base2, _ = self.net(prompt, t["second_parent"][idx], shared)
            n1, n2 = t["first_neutral"][idx][None, :, None], t["second_neutral"][idx][None, :, None]
            drift = ((out1 - base1).pow(2) * n1).mean() + ((out2 - base2).pow(2) * n2).mean()
            loss = loss + self.config.invariance_weight * drift
        return loss

    # ------------------------------------------------------------------ scoring
    @torch.inference_mode()
    def _member_rewards(self, prompt: np.ndarray, response: np.ndarray, group: np.ndarray | None) -> np.ndarray:
        p, r = torch.as_tensor(prompt, dtype=torch.float32), torch.as_tensor(response, dtype=torch.float32)
        if self.conditioned and group is None:  # no group given: the mean over every group
            return np.mean([self._member_rewards(prompt, response, np.full(len(prompt), k, np.int64))
                            for k in range(len(self.group_names))], axis=0)
        g = None if group is None else torch.as_tensor(group, dtype=torch.long)
        out, _ = self.net(self._input(p, g), r)
        return self._pick(out, g).numpy()  # `(members, n)`

    def reward(self, prompt: np.ndarray, response: np.ndarray,
               group: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and standard deviation of the reward, `(n,)` each. Without ``group``,
        a per-group model averages its heads."""
        rewards = self._member_rewards(prompt, response, group)
        return rewards.mean(axis=0), rewards.std(axis=0)

    def preference(self, prompt: np.ndarray, first: np.ndarray, second: np.ndarray,
                   group: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """P(first preferred) `(n,)` and the ensemble's disagreement about it `(n,)`."""
        d = self._member_rewards(prompt, first, group) - self._member_rewards(prompt, second, group)
        p = 1.0 / (1.0 + np.exp(-d))
        return p.mean(axis=0), p.std(axis=0)

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config.__dict__, "dim": self.dim,
                "group_names": self.group_names, "net": self.net.state_dict()}

    @staticmethod
    def from_state(state: dict[str, Any]) -> "RewardModel":
        cls = REWARD_MODELS[state["name"]]
        model = cls(ModelConfig(**state["config"]), state["dim"], state["group_names"])
        try:
            model.net.load_state_dict(state["net"])
        except RuntimeError as exc:  # e.g. bt_mlp_conditioned before c interacted with the response
            raise ConfigError(f"checkpoint of {state['name']}: saved by an older version whose inputs differ "
                              f"({str(exc).splitlines()[0]}); retrain it: `deconfound train`.") from None
        model.net.eval()
        return model


@register_model
class BTMLP(RewardModel):
    name = "bt_mlp"
    description = "Bradley-Terry over an MLP on [prompt, response] embeddings (the baseline)."


@register_model
class ConditionedBTMLP(RewardModel):
    name = "bt_mlp_conditioned"
    description = ("bt_mlp with the annotator group (or objective) as an input that interacts with the response "
                   "embedding: the paper's Base conditioned on c.")
    conditioned = True


@register_model
class MultiHead(RewardModel):
    name = "multihead"
    description = "Shared trunk, one reward head per annotator group."
    per_group = True


@register_model
class Adversarial(RewardModel):
    name = "adversarial"
    description = "Multihead plus a group discriminator trained through gradient reversal."
    per_group = True
    adversarial = True


@register_model
class CounterfactualAugmented(RewardModel):
    name = "counterfactual_augmented"
    description = "Edit-only ties as constraints, edit-only contrasts down-weighted, neutral-edit invariance."
    counterfactual = True


def build_model(name: str, config: ModelConfig, dim: int, group_names: list[str]) -> RewardModel:
    if name not in REWARD_MODELS:
        raise ConfigError(f"model: unknown reward model {name!r}; known: {', '.join(sorted(REWARD_MODELS))}.")
    return REWARD_MODELS[name](config, dim, group_names)


def pairwise_accuracy(model: RewardModel, data: PairData, per_group: bool = True) -> float:
    """Share of non-tie pairs where the model prefers the labelled winner."""
    keep = data.target != 0.5
    if not keep.any():
        return float("nan")
    p, _ = model.preference(data.prompt[keep], data.first[keep], data.second[keep],
                            data.group[keep] if per_group else None)
    return float(((p > 0.5) == (data.target[keep] == 1.0)).mean())
