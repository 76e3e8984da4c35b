"""The study settings: what annotators are told (title, guidelines, the objective they judge
by), how many labels each gives (the quota) and what they see when done. One validated
dataclass, stored in the database as numbered versions like the QC settings; every served pair
records the study version and the objective text it was shown with."""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.core.config import from_dict, load_toml, to_dict
from acquisition.core.errors import ConfigError
from acquisition.core.records import Draw, validate_draw
from collector.store import Store

DEFAULT_GUIDELINES = """
**Your task.** Read the request, then both responses. Pick the response you would rather
receive if you had asked this yourself.

- **A / B is better**: one response is better. Judge what it *says* (correct, complete,
  relevant, clear), not how it looks. Length, lists, bold text, emoji and a friendly tone
  are not merits on their own.
- **Tie**: both are about equally good.
- **Both bad**: neither is acceptable (wrong, harmful, or misses the request).
- **Skip**: you cannot judge this one (outside your knowledge). Skipped pairs are logged.
- **How much better** (only with A or B) and **why** are optional but help researchers a lot.

Keyboard: **1** A, **2** B, **3** tie, **4** both bad, **S** skip (not while typing a reason).
""".strip()

MAX_TITLE = 200
MAX_GUIDELINES = 20_000
MAX_OBJECTIVE = 500
MAX_MESSAGE = 2_000
_OBJECTIVE_STREAM = 0x0B7EC7  # keeps the objective draw apart from the policy's use of a seed
CROWD_ENTRIES = ("", "prolific", "participant")
# the query parameters each crowd entry reads: Prolific's three ids, or a generic ?participant=
CROWD_PARAMETERS = {"prolific": ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID"), "participant": ("participant",)}


@dataclass
class StudyConfig:
    # the heading of the annotator's page
    title: str = "Which response is better?"
    # Markdown shown in the annotator's sidebar (open until their first label)
    guidelines: str = DEFAULT_GUIDELINES
    # the objective shown above every pair, e.g. "Judge which response is more harmless" ("" shows none)
    objective: str = ""
    # per annotator group, an objective that replaces the one above (an annotator's own
    # `annotator add --objective` replaces both)
    group_objectives: dict[str, str] = field(default_factory=dict)
    # labels each annotator gives; at the quota they see the completion message (0: no quota)
    quota: int = 0
    # shown instead of a pair once the quota is reached
    completion_message: str = "Thank you, you are done. You can close this page."
    # a code to show with it (what a crowd platform asks the worker to paste), "" for none
    completion_code: str = ""
    # where to send a finished crowd worker, e.g. https://app.prolific.com/submissions/complete?cc=CODE
    completion_url: str = ""
    # "prolific": an entry URL with PROLIFIC_PID, STUDY_ID and SESSION_ID creates or logs in the
    # participant; "participant": the same with ?participant=ID; "": token links only
    crowd_entry: str = ""
    # the annotator group crowd participants join
    crowd_group: str = "crowd"
    # randomise the objective shown: "annotator" (drawn once per annotator), "pair" (each pair)
    # or "" (off: the fixed objectives above). The draw and its probability are recorded with
    # every served pair (objective, objective_propensity), like any randomised arm
    randomise_objective: str = ""
    # the objectives drawn from, and their probabilities (empty: equal); they must sum to 1
    objectives: list[str] = field(default_factory=list)
    objective_probabilities: list[float] = field(default_factory=list)
    # after this many labels, ask each annotator once whether any response looked edited and
    # what gave it away (a demand-effect check, as experimenters run); 0: never
    suspicion_probe_after: int = 0
    # the exported dataset's terms, as the Hugging Face Hub reads them from the card: an SPDX-like
    # id (e.g. "cc-by-4.0"), or "other" with a name and a link to the terms
    license: str = "other"
    license_name: str = "study-terms-not-set"
    license_link: str = "LICENSE.md"
    # the languages of the prompts and responses (ISO 639-1 codes), for the card
    languages: list[str] = field(default_factory=lambda: ["en"])
    # stopping by rule (collector.serving.stopping): the study ends once every attribute named
    # here is resolved by its 95% confidence sequence (it excludes 0, or lies inside
    # [-stop_rope, stop_rope] when stop_rope > 0), or at max_labels labels (0: no cap)
    stop_when_resolved: list[str] = field(default_factory=list)
    stop_rope: float = 0.0
    max_labels: int = 0

    def validate(self, where: str = "study") -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]{0,63}", self.license or ""):
            raise ConfigError(f"{where}.license: a license id in lower case (e.g. cc-by-4.0, mit, other); "
                              f"got {self.license!r}.")
        if self.license == "other" and not (self.license_name.strip() and self.license_link.strip()):
            raise ConfigError(f"{where}.license_name, license_link: both are needed with license = \"other\".")
        for i, code in enumerate(self.languages):
            if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?", code):
                raise ConfigError(f"{where}.languages[{i}]: an ISO 639 code such as en or de; got {code!r}.")
        for name, limit, required in (("title", MAX_TITLE, True), ("guidelines", MAX_GUIDELINES, True),
                                      ("objective", MAX_OBJECTIVE, False),
                                      ("completion_message", MAX_MESSAGE, True),
                                      ("completion_code", MAX_TITLE, False)):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ConfigError(f"{where}.{name}: must be text; got {type(value).__name__}.")
            if required and not value.strip():
                raise ConfigError(f"{where}.{name}: must not be empty.")
            if len(value) > limit:
                raise ConfigError(f"{where}.{name}: {len(value):,} characters; at most {limit:,}.")
        if not isinstance(self.group_objectives, dict):
            raise ConfigError(f"{where}.group_objectives: must be a table of group = \"objective\".")
        for group, text in self.group_objectives.items():
            if not isinstance(group, str) or not group.strip():
                raise ConfigError(f"{where}.group_objectives: a group name must be non-empty text.")
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_OBJECTIVE:
                raise ConfigError(f"{where}.group_objectives.{group}: must be non-empty text of at most "
                                  f"{MAX_OBJECTIVE} characters.")
        if self.crowd_entry not in CROWD_ENTRIES:
            raise ConfigError(f"{where}.crowd_entry: must be one of \"prolific\", \"participant\" or \"\"; "
                              f"got {self.crowd_entry!r}.")
        if not isinstance(self.crowd_group, str) or not self.crowd_group.strip():
            raise ConfigError(f"{where}.crowd_group: must be non-empty text.")
        if self.completion_url and not self.completion_url.startswith(("https://", "http://")):
            raise ConfigError(f"{where}.completion_url: must start with https:// (got {self.completion_url[:60]!r}).")
        if self.randomise_objective not in ("", "annotator", "pair"):
            raise ConfigError(f"{where}.randomise_objective: must be \"annotator\", \"pair\" or \"\"; "
                              f"got {self.randomise_objective!r}.")
        for i, text in enumerate(self.objectives):
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_OBJECTIVE:
                raise ConfigError(f"{where}.objectives[{i}]: must be non-empty text of at most {MAX_OBJECTIVE} characters.")
        if len(set(self.objectives)) != len(self.objectives):
            raise ConfigError(f"{where}.objectives: each objective may be listed once.")
        if self.randomise_objective and len(self.objectives) < 2:
            raise ConfigError(f"{where}.objectives: randomising needs at least two objectives; got {len(self.objectives)}.")
        if self.objective_probabilities:
            if len(self.objective_probabilities) != len(self.objectives):
                raise ConfigError(f"{where}.objective_probabilities: {len(self.objective_probabilities)} values for "
                                  f"{len(self.objectives)} objectives.")
            if any(not 0 < p < 1 for p in self.objective_probabilities):
                raise ConfigError(f"{where}.objective_probabilities: each must be strictly between 0 and 1.")
            if abs(sum(self.objective_probabilities) - 1) > 1e-9:
                raise ConfigError(f"{where}.objective_probabilities: must sum to 1; got "
                                  f"{sum(self.objective_probabilities):g}.")
        probe = self.suspicion_probe_after
        if isinstance(probe, bool) or not isinstance(probe, int) or not 0 <= probe <= 1_000_000:
            raise ConfigError(f"{where}.suspicion_probe_after: must be a whole number of labels, 0 (never ask) or more; "
                              f"got {probe!r}.")
        if not isinstance(self.stop_when_resolved, list) or not all(
                isinstance(a, str) and a.strip() for a in self.stop_when_resolved):
            raise ConfigError(f"{where}.stop_when_resolved: must be a list of attribute names.")
        if len(set(self.stop_when_resolved)) != len(self.stop_when_resolved):
            raise ConfigError(f"{where}.stop_when_resolved: each attribute may be listed once.")
        rope = self.stop_rope
        if isinstance(rope, bool) or not isinstance(rope, (int, float)) or not (0 <= rope < 1 and rope == rope):
            raise ConfigError(f"{where}.stop_rope: must be a difference in choice probability in [0, 1); got {rope!r}.")
        cap = self.max_labels
        if isinstance(cap, bool) or not isinstance(cap, int) or not 0 <= cap <= 100_000_000:
            raise ConfigError(f"{where}.max_labels: must be a whole number of labels, 0 (no cap) or more; got {cap!r}.")
        if isinstance(self.quota, bool) or not isinstance(self.quota, int) or not 0 <= self.quota <= 1_000_000:
            raise ConfigError(f"{where}.quota: must be a whole number of labels, 0 (no quota) or more; "
                              f"got {self.quota!r}.")

    def objective_for(self, annotator: dict[str, Any]) -> str | None:
        """The fixed objective text ``annotator`` is shown: their own, else their group's, else
        the study's; ``None`` when there is none."""
        own = (annotator.get("objective") or "").strip()
        text = own or self.group_objectives.get(annotator.get("group_name") or "", "") or self.objective
        return text.strip() or None

    @property
    def probabilities(self) -> list[float]:
        if not self.objectives:
            return []
        return list(self.objective_probabilities) or [1.0 / len(self.objectives)] * len(self.objectives)

    def draw_objective(self, annotator: dict[str, Any], pair_seed: int) -> tuple[str | None, float | None]:
        """``(objective, propensity)`` for a new served pair. Randomised: drawn from
        ``objectives`` with ``probabilities``, per pair from ``pair_seed`` or per annotator
        from their id (the same draw for every pair they see), its propensity the drawn
        objective's probability. Fixed: ``objective_for`` with propensity 1 (``None`` if none)."""
        if not self.randomise_objective:
            text = self.objective_for(annotator)
            return text, (1.0 if text else None)
        if self.randomise_objective == "annotator":
            stream = zlib.crc32(json.dumps(self.objectives).encode())
            rng = np.random.default_rng([int(annotator["id"]), stream, _OBJECTIVE_STREAM])
        else:
            rng = np.random.default_rng([pair_seed, _OBJECTIVE_STREAM])
        p = self.probabilities
        k = int(rng.choice(len(self.objectives), p=p))
        return self.objectives[k], float(p[k])


def objective_draw(config: StudyConfig, version: int, annotator: dict[str, Any], pair_seed: int) -> Draw | None:
    """The objective shown with a new pair as a validated draw (family ``objective``, the study
    settings version, its exact probability); ``None`` when no objective is shown."""
    text, probability = config.draw_objective(annotator, pair_seed)
    if text is None or probability is None:
        return None
    return validate_draw(Draw("objective", text, probability, "objective", version))


def study_config(store: Store) -> StudyConfig:
    """The study settings stored in the database (defaults until set)."""
    stored = store.get_meta("study_config")
    return from_dict(StudyConfig, json.loads(stored), "study") if stored else StudyConfig()


def study_version(store: Store) -> int:
    return int(store.get_meta("study_version", "0") or 0)


STOPPED_META = "study_stopped"  # the stop a rule recorded (collector.serving.stopping)


def stopped(store: Store) -> dict[str, Any] | None:
    """The study's recorded stop by rule (reason, labels, sequences, study version), or ``None``
    while it runs (a light read: the serving path checks it)."""
    raw = store.get_meta(STOPPED_META)
    return json.loads(raw) if raw else None


def update_study_config(store: Store, changes: dict[str, Any], where: str = "study") -> tuple[StudyConfig, int]:
    """Merge ``changes`` into the stored settings, validate (errors name the field) and store
    them as the next version; returns the settings and their version. Nothing is written on
    an error."""
    config = from_dict(StudyConfig, {**to_dict(study_config(store)), **changes}, where)
    config.validate(where)
    with store.transaction():
        version = study_version(store) + 1
        store.set_metas({"study_config": json.dumps(to_dict(config), sort_keys=True), "study_version": str(version)})
    return config, version


def load_study_file(path: str | Path) -> dict[str, Any]:
    """A TOML file with the study keys at the top level or under ``[study]``."""
    data = load_toml(path)
    return data["study"] if set(data) == {"study"} else data


SUSPICION_QUESTION = "Did any of the responses you compared look edited or templated, rather than written as they are?"
SUSPICION_ANSWERS = {"yes": "Yes", "no": "No", "not_sure": "Not sure"}
MAX_SUSPICION_NOTE = 500
