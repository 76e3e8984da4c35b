"""World files: what a benchmark run simulates, as TOML validated into dataclasses.

A world names its data source, the simulated annotators (``collector.jobs.simulate``), the
observational confounding knobs, the policies and reward models to compare, and the sweeps.
Every table is checked by ``acquisition.core.config.from_dict``: a wrong key, type or range names
the field (``worlds/x.toml.confounding.rho_spurious: must be in (0, 1) ...``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from acquisition.core.config import from_dict, load_toml
from acquisition.core.errors import ConfigError
from acquisition.editors import EDITORS, Editor
from collector.jobs.simulate import SimulatedAnnotatorConfig
from models.reward import REWARD_MODELS, ModelConfig

WORLDS_DIR = Path(__file__).resolve().parent / "worlds"
ARMS = ("observational", "randomised_attributes", "counterfactual_pairs", "active_mixture")
SOURCES = ("synthetic", "file")
EMBEDDERS = ("minilm", "bag_of_words")


@dataclass
class SourceConfig:
    # "synthetic": generated prompts and responses with a known latent quality;
    # "file": human preference pairs (HH-RLHF, TRL, UltraFeedback, ...), the human label as truth
    kind: str = "synthetic"
    path: str = ""  # the file for kind = "file" (any format collector.io.importers reads)
    train: int = 1000  # prompts (each with one better and one worse response) in the training pool
    test: int = 500  # held-out prompts for the ID / OOD test sets
    hidden_quality: float = 0.0  # synthetic: SD of the quality no text feature shows (lowers the ceiling)
    flip_rate: float = 0.1  # file: P(the simulated annotator prefers the human-rejected response), ties aside
    seed: int = 0  # shuffles the source before the train / test split

    def validate(self, where: str) -> None:
        if self.kind not in SOURCES:
            raise ConfigError(f"{where}.kind: must be one of {', '.join(SOURCES)}; got {self.kind!r}.")
        if self.kind == "file" and not self.path:
            raise ConfigError(f"{where}.path: kind = \"file\" needs the path of a preference file.")
        if self.train < 20 or self.test < 20:
            raise ConfigError(f"{where}.train / test: need at least 20 prompts each; got {self.train} / {self.test}.")
        if self.hidden_quality < 0:
            raise ConfigError(f"{where}.hidden_quality: must be zero or positive; got {self.hidden_quality}.")
        if not 0.0 < self.flip_rate < 0.5:
            raise ConfigError(f"{where}.flip_rate: must be strictly between 0 and 0.5; got {self.flip_rate}.")


@dataclass
class ConfoundingConfig:
    # attributes whose presence tracks quality in the natural (observational) pool; true effect 0
    spurious: list[str] = field(default_factory=lambda: ["verbosity"])
    # P(a spurious attribute sits on the better response) in the natural pool (0.5: independent)
    rho_spurious: float = 0.9
    # an attribute WITH a true effect (a second latent quality factor), or "" for none
    latent: str = ""
    # correlation between the latent attribute's contribution and the base quality in the pool
    rho_latent: float = 0.0
    # spurious attributes no arm randomises: written into every arm's pool (on the better response
    # with rho_spurious) and into its own mirrored test sets, so the benchmark says whether
    # interventional data generalises to a shortcut it never intervened on
    unrandomised: list[str] = field(default_factory=list)
    # how the natural pool's padding is written: "editor" (the verbosity editor's own filler, which
    # the interventional arms can take out again) or "held_out" (filler the editor never writes
    # and cannot detect: a confound the arms can add to but never remove, like natural length)
    planted: str = "editor"

    def validate(self, where: str) -> None:
        for i, a in enumerate(self.unrandomised):
            if a not in EDITORS or a in self.spurious or a == self.latent:
                raise ConfigError(f"{where}.unrandomised[{i}]: {a!r} must be a known attribute that is neither "
                                  "spurious nor latent.")
        for i, a in enumerate(self.spurious):
            if a not in EDITORS:
                raise ConfigError(f"{where}.spurious[{i}]: unknown attribute {a!r}; known: {', '.join(sorted(EDITORS))}.")
        if self.latent and self.latent not in EDITORS:
            raise ConfigError(f"{where}.latent: unknown attribute {self.latent!r}; known: {', '.join(sorted(EDITORS))}.")
        if self.latent in self.spurious:
            raise ConfigError(f"{where}.latent: {self.latent!r} is also listed as spurious.")
        if self.planted not in ("editor", "held_out"):
            raise ConfigError(f"{where}.planted: must be \"editor\" or \"held_out\"; got {self.planted!r}.")
        if not 0.0 < self.rho_spurious < 1.0:
            raise ConfigError(f"{where}.rho_spurious: must be strictly between 0 and 1; got {self.rho_spurious}.")
        if not 0.0 <= self.rho_latent < 1.0:
            raise ConfigError(f"{where}.rho_latent: must be in [0, 1); got {self.rho_latent}.")


@dataclass
class ArmsConfig:
    # attributes the interventional arms switch at random (must include spurious and latent)
    randomised: list[str] = field(default_factory=lambda: ["verbosity", "list_format", "sycophantic_opener", "emoji"])
    counterfactual_share: float = 0.3  # counterfactual_pairs arm: share of minimal pairs (rest randomised)
    active_share: float = 0.5  # active_mixture arm: share served by `active` (rest randomised)
    active_uniform_share: float = 0.2  # `active`'s own uniform slice
    retrain_every: int = 200  # active_mixture: the worker retrains after this many new labels
    # active's edit vectors: "none" (coin flips) or "eubo" (BoTorch EUBO over the design space)
    active_design: str = "none"
    annotators: int = 4  # simulated annotators per arm (spread over the groups)
    # also run randomised_attributes on a pool with nothing written in (no confound in the texts):
    # what randomising would buy if the confound were not already there; an upper bound, labelled so
    clean_upper_bound: bool = False

    def validate(self, where: str) -> None:
        for i, a in enumerate(self.randomised):
            if a not in EDITORS:
                raise ConfigError(f"{where}.randomised[{i}]: unknown attribute {a!r}; known: {', '.join(sorted(EDITORS))}.")
        for key in ("counterfactual_share", "active_share", "active_uniform_share"):
            if not 0.0 < getattr(self, key) < 1.0:
                raise ConfigError(f"{where}.{key}: must be strictly between 0 and 1; got {getattr(self, key)}.")
        if self.active_design not in ("none", "eubo"):
            raise ConfigError(f"{where}.active_design: must be 'none' or 'eubo'; got {self.active_design!r}.")
        if self.retrain_every < 10:
            raise ConfigError(f"{where}.retrain_every: must be at least 10; got {self.retrain_every}.")
        if self.annotators < 1:
            raise ConfigError(f"{where}.annotators: must be at least 1; got {self.annotators}.")


@dataclass
class AssignmentConfig:
    """The ``rho_assignment`` experiment: annotator groups are the prompt types, each judging by
    its own objective (a per-group true effect of ``attribute``); in observational collection a
    group sees prompts of its own type with probability ``rho_assignment``."""

    attribute: str = "verbosity"
    group_effects: dict[str, float] = field(default_factory=lambda: {"everyday": 3.0, "technical": -3.0})
    # prompt-dependent objectives (the faithful Table 2): {group = {prompt type = effect}}; when
    # given, they replace group_effects, so a group's effect on the other prompt type is only
    # learnable from pairs it judged there
    cell_effects: dict[str, dict[str, float]] = field(default_factory=dict)

    def validate(self, where: str) -> None:
        if self.cell_effects and set(self.cell_effects) != set(self.group_effects):
            raise ConfigError(f"{where}.cell_effects: give the same two groups as group_effects "
                              f"({', '.join(sorted(self.group_effects))}).")
        if self.attribute not in EDITORS:
            raise ConfigError(f"{where}.attribute: unknown attribute {self.attribute!r}; known: {', '.join(sorted(EDITORS))}.")
        if len(self.group_effects) != 2:
            raise ConfigError(f"{where}.group_effects: give exactly two groups (prompt types); got {len(self.group_effects)}.")


@dataclass
class ObjectiveConfig:
    """The objective as an intervention: every served pair shows one of ``objectives`` drawn
    with ``probabilities`` (per pair or per annotator), and the simulated annotators' true
    effects depend on it (``annotators.objective_effects``). Empty: no objective experiment."""

    randomise: str = ""  # "pair" or "annotator"; "" skips the experiment
    objectives: list[str] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)  # empty: equal

    def validate(self, where: str) -> None:
        if self.randomise not in ("", "pair", "annotator"):
            raise ConfigError(f"{where}.randomise: must be \"pair\", \"annotator\" or \"\"; got {self.randomise!r}.")
        if self.randomise and len(self.objectives) < 2:
            raise ConfigError(f"{where}.objectives: name at least two objectives to randomise.")


@dataclass
class AmceCheckConfig:
    """An AMCE check that can fail: ``seeds`` independent collections of ``labels`` labels
    under ``randomised_attributes`` by two annotator groups, each attribute's AMCE per group
    against the population AMCE (Monte Carlo over ``draws`` redraws of the design), and the
    naive observational estimate of the spurious attribute as a negative control. 0 seeds skips."""

    seeds: int = 0
    labels: int = 1000
    draws: int = 200_000
    groups: list[str] = field(default_factory=lambda: ["first", "second"])

    def validate(self, where: str) -> None:
        if self.seeds < 0 or self.labels < 100 or self.draws < 1000:
            raise ConfigError(f"{where}: seeds >= 0, labels >= 100 and draws >= 1000 are required.")
        if len(self.groups) < 1 or len(set(self.groups)) != len(self.groups):
            raise ConfigError(f"{where}.groups: name one or more distinct groups.")


def _protocol_model() -> ModelConfig:
    return ModelConfig(ensemble=1, hidden=64, steps=300, batch_size=256, dropout=0.0, weight_decay=1e-2)


STRATEGIES = ("random", "diversity", "bald", "bald_diversity")


@dataclass
class ActiveProtocolConfig:
    """Active acquisition against random at a fixed pool: ``seeds`` paired seeds (same pool,
    test split, first batch and annotator draws for every strategy), a synthetic pool of
    ``pool_factor`` times the largest budget in candidate pairs (``responses_per_prompt``
    responses per prompt, every pair a candidate), a refit and rescoring every
    ``refresh_every`` labels, and accuracy at ``budgets``. Per seed, the labels a strategy needs
    to reach random's accuracy at ``reference_budget``, as a ratio to it. 0 seeds skips."""

    seeds: int = 0
    budgets: list[int] = field(default_factory=lambda: [50, 100, 150, 200, 300, 400, 550, 800, 1150, 1600, 2250, 3200])
    reference_budget: int = 1600
    refresh_every: int = 50
    warm_steps: int = 50  # optimiser steps that update the scoring model at a refresh between budgets
    pool_factor: int = 20
    responses_per_prompt: int = 5
    test_prompts: int = 1600
    hidden_quality: float = 1.0
    noise: float = 1.0  # the simulated annotator: P(a over b) = sigmoid((q_a - q_b) / noise)
    floor: float = 0.1  # uniform share of every targeted draw (each pair keeps floor / n)
    beta: float = 1.0  # softrank exponent
    diversity_weight: float = 1.0  # weight of the standardised prompt-diversity term
    prior_precision: float = 1.0  # of the Laplace reward head
    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    model: ModelConfig = field(default_factory=_protocol_model)
    # true: through the product (Collector, the active policy, the worker publishing scores;
    # collector/benchmarks/causal/active_served.py); false: the harness calling the functions
    served: bool = False
    # served: the same protocol again on a pool of pure label noise, whose label ratio CI must cover 1
    noise_control: bool = True

    def validate(self, where: str) -> None:
        if self.seeds < 0:
            raise ConfigError(f"{where}.seeds: must be at least 0; got {self.seeds}.")
        if self.warm_steps < 1:
            raise ConfigError(f"{where}.warm_steps: must be at least 1; got {self.warm_steps}.")
        if self.refresh_every < 10:
            raise ConfigError(f"{where}.refresh_every: must be at least 10; got {self.refresh_every}.")
        for i, b in enumerate(self.budgets):
            if b < self.refresh_every or b % self.refresh_every:
                raise ConfigError(f"{where}.budgets[{i}]: must be a multiple of refresh_every ({self.refresh_every}); "
                                  f"got {b}.")
        if self.budgets != sorted(set(self.budgets)):
            raise ConfigError(f"{where}.budgets: must be increasing without repeats.")
        if self.reference_budget not in self.budgets:
            raise ConfigError(f"{where}.reference_budget: must be one of budgets; got {self.reference_budget}.")
        if self.pool_factor < 1 or self.responses_per_prompt < 2 or self.test_prompts < 10:
            raise ConfigError(f"{where}: pool_factor >= 1, responses_per_prompt >= 2 and test_prompts >= 10 are required.")
        if not 0.0 < self.floor <= 1.0:
            raise ConfigError(f"{where}.floor: must be in (0, 1]; got {self.floor}.")
        if self.noise <= 0 or self.prior_precision <= 0 or self.beta <= 0:
            raise ConfigError(f"{where}: noise, prior_precision and beta must be positive.")
        for i, s in enumerate(self.strategies):
            if s not in STRATEGIES:
                raise ConfigError(f"{where}.strategies[{i}]: unknown strategy {s!r}; known: {', '.join(STRATEGIES)}.")
        if "random" not in self.strategies:
            raise ConfigError(f"{where}.strategies: must include random (the reference).")
        self.model.validate(f"{where}.model")


@dataclass
class SweepsConfig:
    rho_latent: list[float] = field(default_factory=list)  # e.g. [0.0, 0.3, 0.6, 0.9]; [] skips
    rho_assignment: list[float] = field(default_factory=list)  # e.g. [0.5, 0.8, 0.9, 1.0]; [] skips
    models: list[str] = field(default_factory=lambda: ["bt_mlp", "multihead", "adversarial"])
    # the attribute with a true effect whose correlation is swept: one the editors can add and take
    # away, since both arms collect from the pool where it is already written in
    latent: str = "closing_pleasantry"
    latent_effect: float = -2.0  # its true effect in the sweep, in reward units (drop_answer's size)
    # run randomised assignment again where the groups agree: the control beside "a model that
    # sees c beats one that does not"
    conditioning_control: bool = False

    def validate(self, where: str) -> None:
        for i, r in enumerate(self.rho_latent):
            if not 0.0 <= r < 1.0:
                raise ConfigError(f"{where}.rho_latent[{i}]: must be in [0, 1); got {r}.")
        for i, r in enumerate(self.rho_assignment):
            if not 0.5 <= r <= 1.0:
                raise ConfigError(f"{where}.rho_assignment[{i}]: must be in [0.5, 1]; got {r}.")
        _check_models(self.models, f"{where}.models")
        if self.latent not in EDITORS:
            raise ConfigError(f"{where}.latent: unknown attribute {self.latent!r}; known: {', '.join(sorted(EDITORS))}.")
        if self.latent_effect == 0:
            raise ConfigError(f"{where}.latent_effect: the swept factor needs a true effect; got 0.")


def _check_models(models: list[str], where: str) -> None:
    if not models:
        raise ConfigError(f"{where}: name at least one reward model; known: {', '.join(sorted(REWARD_MODELS))}.")
    for i, m in enumerate(models):
        if m not in REWARD_MODELS:
            raise ConfigError(f"{where}[{i}]: unknown reward model {m!r}; known: {', '.join(sorted(REWARD_MODELS))}.")


@dataclass
class World:
    name: str = "world"
    labels: int = 1000  # labels collected per arm and seed
    seeds: int = 3
    curve: list[int] = field(default_factory=list)  # label counts for the labels-to-target curves ([]: quarters)
    policies: list[str] = field(default_factory=lambda: list(ARMS))
    models: list[str] = field(default_factory=lambda: ["bt_mlp"])  # the first is the headline model
    embedder: str = "minilm"  # "bag_of_words": a hashed bag-of-words stand-in for tests
    embed_max_tokens: int = 128  # MiniLM's truncation; 512 keeps multi-turn HH prompts whole (slower)
    embedder_path: str = ""  # another local encoder folder (transformers), instead of the packaged MiniLM
    source: SourceConfig = field(default_factory=SourceConfig)
    confounding: ConfoundingConfig = field(default_factory=ConfoundingConfig)
    annotators: SimulatedAnnotatorConfig = field(default_factory=SimulatedAnnotatorConfig)
    arms: ArmsConfig = field(default_factory=ArmsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    assignment: AssignmentConfig = field(default_factory=AssignmentConfig)
    sweeps: SweepsConfig = field(default_factory=SweepsConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    amce_check: AmceCheckConfig = field(default_factory=AmceCheckConfig)
    active_protocol: ActiveProtocolConfig = field(default_factory=ActiveProtocolConfig)
    # negative controls beside the headline: the interventional arms again on an unconfounded pool
    # (rho = 0.5), where the gain's CI must cover 0; a headline whose control fails prints as failed
    negative_controls: bool = True
    smoke: bool = False  # set by --quick: the report says it is a smoke test

    def validate(self, where: str) -> None:
        if self.labels < 40:
            raise ConfigError(f"{where}.labels: must be at least 40; got {self.labels}.")
        if self.seeds < 1:
            raise ConfigError(f"{where}.seeds: must be at least 1; got {self.seeds}.")
        for i, n in enumerate(self.curve):
            if not 20 <= n <= self.labels:
                raise ConfigError(f"{where}.curve[{i}]: must be between 20 and labels ({self.labels}); got {n}.")
        for i, p in enumerate(self.policies):
            if p not in ARMS:
                raise ConfigError(f"{where}.policies[{i}]: unknown arm {p!r}; known: {', '.join(ARMS)}.")
        _check_models(self.models, f"{where}.models")
        if not 16 <= self.embed_max_tokens <= 512:
            raise ConfigError(f"{where}.embed_max_tokens: must be between 16 and 512; got {self.embed_max_tokens}.")
        if self.embedder not in EMBEDDERS:
            raise ConfigError(f"{where}.embedder: must be one of {', '.join(EMBEDDERS)}; got {self.embedder!r}.")
        self.annotators.validate(f"{where}.annotators")
        latent = self.confounding.latent
        if latent and self.annotators.effect(latent) == 0:
            raise ConfigError(
                f"{where}.confounding.latent: {latent!r} has no true effect; give it one under "
                "[annotators.attribute_effects] (a latent factor changes quality; spurious ones go in spurious)."
            )
        if "active_mixture" in self.policies and self.labels * self.arms.active_share > 0.8 * self.source.train:
            raise ConfigError(
                f"{where}.labels: active_mixture's `active` share ({self.labels} x {self.arms.active_share}) needs more "
                f"base pairs than the pool leaves: active never serves a base pair twice, and the pool has "
                f"{self.source.train} (one per training prompt); keep labels x active_share <= 0.8 x source.train."
            )
        overlap = sorted(set(self.confounding.unrandomised) & set(self.arms.randomised))
        if overlap:
            raise ConfigError(f"{where}.arms.randomised: {', '.join(overlap)} is listed as unrandomised under "
                              "[confounding]; an arm must not randomise it.")
        needed = set(self.confounding.spurious) | ({self.confounding.latent} - {""})
        latent_swept = {self.sweeps.latent} if self.sweeps.rho_latent else set()
        for a in sorted(needed | latent_swept):
            if type(EDITORS[a]).remove is Editor.remove:
                raise ConfigError(
                    f"{where}: {a!r} is confounded in the natural pool but its editor cannot take it out of a text "
                    "(no remove), so the interventional arms, which collect from that pool, could not randomise it; "
                    "confound a two-way attribute (verbosity, closing_pleasantry, list_format, ...)."
                )
        missing = sorted(needed - set(self.arms.randomised))
        if missing:
            raise ConfigError(
                f"{where}.arms.randomised: must include every confounded attribute so the interventional "
                f"arms randomise it; missing {', '.join(missing)}."
            )

    @property
    def curve_points(self) -> list[int]:
        return sorted(set(self.curve)) if self.curve else [self.labels * k // 4 for k in (1, 2, 3, 4)]


def load_world(path: str | Path) -> World:
    """Read and validate a world file; errors name the file and the field."""
    return from_dict(World, load_toml(path), str(path))


def world_path(name_or_path: str) -> Path:
    """A world file by path, or by name from ``collector/benchmarks/causal/worlds/``."""
    path = Path(name_or_path)
    if path.exists() or path.suffix == ".toml":
        return path
    candidate = WORLDS_DIR / f"{name_or_path}.toml"
    if not candidate.exists():
        known = ", ".join(sorted(p.stem for p in WORLDS_DIR.glob("*.toml")))
        raise ConfigError(f"{name_or_path}: no such world file or built-in world; built-in: {known}.")
    return candidate


def quick(world: World) -> World:
    """The ``--quick`` configuration: 300 training and 150 test prompts, 300 labels, 2 seeds,
    the headline model only, the confounded attributes plus one other randomised, two curve
    points and no sweeps; chosen so a cold-cache run embeds about 3,000 texts and stays under
    5 minutes on 2 cores."""
    confounded = [*world.confounding.spurious, *([world.confounding.latent] if world.confounding.latent else [])]
    others = [a for a in world.arms.randomised if a not in confounded]
    labels = min(world.labels, 300)
    return dataclasses.replace(
        world, smoke=True,
        labels=labels, seeds=min(world.seeds, 2), curve=[labels // 2, labels], models=world.models[:1],
        source=dataclasses.replace(world.source, train=min(world.source.train, 300),
                                   test=min(world.source.test, 150)),
        arms=dataclasses.replace(world.arms, randomised=confounded + others[:1],
                                 retrain_every=max(min(world.arms.retrain_every, labels // 3), 10)),
        sweeps=dataclasses.replace(world.sweeps, rho_latent=[], rho_assignment=[]),
        active_protocol=dataclasses.replace(
            world.active_protocol, seeds=min(world.active_protocol.seeds, 2),
            budgets=[world.active_protocol.refresh_every * m for m in (1, 2, 4)],
            reference_budget=2 * world.active_protocol.refresh_every, test_prompts=min(world.active_protocol.test_prompts, 200)),
    )
