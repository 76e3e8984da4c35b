"""Typed records of the assignment mechanism, parsed once where data leaves the store and
serialised once where it enters it.

- ``EditVector``: what a side's edits were (attribute -> switch, editor, seed, and once served,
  whether the edit applied and was realised). Read-only; ``to_json`` is the stored form.
- ``ProposedSide``/``Proposal``: one draw of a proposer (a policy, quality control), with the
  family it is filed under and its exact probability; ``Draw``: any other logged random draw
  (the objective shown).
- ``PolicySpec``: a stored policy version (name, version, id and its config table).

Every proposal and draw passes ``validate_draw`` (and a pool proposal ``validate_proposal`` in
``acquisition.policies``), so every random draw the product logs has a family, a version and a
probability in (0, 1].
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from acquisition.core.errors import DeconfoundError

# The families a served pair can be filed under (``Proposal.family``). A mixture files each pair
# under the component that served it.
FAMILIES = ("observational", "randomised_assignment", "randomised_attributes", "counterfactual",
            "overlap_targeting", "active", "quality_control", "imported")
DRAW_FAMILIES = ("objective",)  # the other logged draws (``Draw``): the study's objective shown


class InvalidProposal(DeconfoundError):
    """A proposer proposed a pair (or a draw) that breaks the contract (a bug in that proposer)."""


class EditVector(Mapping[str, Mapping[str, Any]]):
    """attribute -> ``{"on", "editor", "seed"}`` (and, as served, ``"applies"``, ``"realised"``).

    Built from a dict, another ``EditVector`` or the stored JSON text (``parse``); read-only."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._entries: dict[str, dict[str, Any]] = {str(a): dict(e) for a, e in (entries or {}).items()}

    @classmethod
    def parse(cls, value: EditVector | Mapping[str, Any] | str | bytes | None) -> EditVector:
        """The stored JSON text (or ``None``: no edits), a dict or an ``EditVector``."""
        if isinstance(value, EditVector):
            return value
        if value is None or value == "":
            return cls()
        if isinstance(value, (str, bytes)):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise DeconfoundError(f"edit vector: not JSON ({exc.msg} at character {exc.pos}).") from None
        if not isinstance(value, Mapping) or not all(isinstance(e, Mapping) for e in value.values()):
            raise DeconfoundError(f"edit vector: must map each attribute to a table; got {value!r:.80}.")
        return cls(value)

    def __getitem__(self, attribute: str) -> Mapping[str, Any]:
        return self._entries[attribute]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EditVector):
            return self._entries == other._entries
        if isinstance(other, Mapping):
            return self._entries == {a: dict(e) for a, e in other.items()}
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        return f"EditVector({self._entries!r})"

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {a: dict(e) for a, e in self._entries.items()}

    def to_json(self) -> str:
        """The stored form (keys sorted)."""
        return json.dumps(self._entries, sort_keys=True)

    def on_set(self) -> frozenset[str]:
        """The attributes switched on (assigned)."""
        return frozenset(a for a, e in self._entries.items() if e.get("on"))

    def received(self, attribute: str) -> bool | None:
        """The treatment this side received for ``attribute``: ``realised`` where recorded
        (``None``: it did not apply), else the assigned switch (pairs served before it was
        recorded); ``None`` where the attribute was not randomised."""
        entry = self._entries.get(attribute)
        if entry is None:
            return None
        if "realised" in entry:
            return None if entry["realised"] is None else bool(entry["realised"])
        return bool(entry.get("on"))

    def received_on(self, attributes: Any = None) -> frozenset[str]:
        """The attributes (of ``attributes``, default all) this side received switched on."""
        return frozenset(a for a in self._entries if (attributes is None or a in attributes) and self.received(a))


@dataclass(frozen=True)
class ProposedSide:
    base_response_id: int
    edit_vector: Mapping[str, Mapping[str, Any]]  # attribute -> {"on", "editor", "seed"}; held as an EditVector
    response_id: int | None = None  # a stored variant of the base (an LLM rewrite), served as it is

    def __post_init__(self) -> None:
        if not isinstance(self.edit_vector, EditVector):
            object.__setattr__(self, "edit_vector", EditVector.parse(self.edit_vector))


@dataclass(frozen=True)
class Proposal:
    """One proposed pair. ``family`` files it (``FAMILIES``); a policy's proposals get the
    policy's family where they leave it empty (a mixture fills in its component's)."""

    prompt_id: int
    left: ProposedSide
    right: ProposedSide
    position_swapped: bool  # True when the proposer's first response is shown on the right
    arm: str
    propensity_score: float
    arm_propensity: float
    acquisition_score: float | None = None
    model_version: str | None = None
    # P(attribute on for a side | the attribute is randomised in this pair), for each attribute
    # the edits of this pair randomised: the marginal propensity an attribute-level estimator
    # (DoWhy, EconML) divides by. The same for both sides in every built-in policy.
    edit_marginals: dict[str, float] | None = None
    family: str = ""


@dataclass(frozen=True)
class Draw:
    """A logged random draw that is not a pair (the objective shown with a pair)."""

    what: str  # e.g. "objective"
    value: Any
    probability: float
    family: str
    version: int


def check_probability(p: float, what: str, upper_open: bool = False) -> None:
    if not isinstance(p, (int, float)) or math.isnan(p) or not (0.0 < p < 1.0 if upper_open else 0.0 < p <= 1.0):
        bound = "(0, 1)" if upper_open else "(0, 1]"
        raise InvalidProposal(f"{what} {p} is outside {bound}")


D = TypeVar("D", Proposal, Draw)


def validate_draw(draw: D) -> D:
    """The contract every logged draw meets: a known family and exact probabilities in (0, 1]."""
    families = DRAW_FAMILIES if isinstance(draw, Draw) else FAMILIES
    if draw.family not in families:
        raise InvalidProposal(f"family {draw.family!r} is not one of {', '.join(families)}")
    if isinstance(draw, Draw):
        check_probability(draw.probability, f"the probability of the {draw.what} draw")
        return draw
    if (draw.left.base_response_id == draw.right.base_response_id
            and draw.left.response_id == draw.right.response_id
            and EditVector.parse(draw.left.edit_vector).on_set() == EditVector.parse(draw.right.edit_vector).on_set()):
        raise InvalidProposal(f"both sides are the same response ({draw.left.base_response_id})")
    check_probability(draw.propensity_score, "propensity")
    check_probability(draw.arm_propensity, "propensity")
    for attribute, p in (draw.edit_marginals or {}).items():
        check_probability(p, f"the marginal propensity of {attribute}", upper_open=True)
    return draw


@dataclass(frozen=True)
class PolicySpec:
    """A stored policy version: ``config`` is its table as stored (parsed from JSON once, by
    the store); ``acquisition.policies.parse_policy_config`` turns it into the policy's dataclass."""

    id: int
    name: str
    version: int
    config: Mapping[str, Any] = field(default_factory=dict)
    created_at: float | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PolicySpec:
        config = row["config"]
        if isinstance(config, (str, bytes)):
            try:
                config = json.loads(config)
            except json.JSONDecodeError as exc:
                raise DeconfoundError(f"policy version {row['version']}: config is not JSON ({exc.msg}).") from None
        return cls(int(row["id"]), str(row["name"]), int(row["version"]), dict(config), row.get("created_at"))

    @property
    def key(self) -> tuple[int, int]:
        return self.id, self.version

    # dict-style reads, for callers that take the stored row
    def __getitem__(self, item: str) -> Any:
        return getattr(self, item)

    def get(self, item: str, default: Any = None) -> Any:
        return getattr(self, item, default)
