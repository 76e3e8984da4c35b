"""The quality-control settings (overlap, gold and attention rates, warning thresholds),
validated and stored in the database as numbered versions."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acquisition.core.config import from_dict, load_toml, to_dict
from acquisition.core.errors import ConfigError
from collector.store import Store

QC_KINDS = ("regular", "repeat", "gold", "attention")
ATTENTION_KINDS = ("drop_answer", "off_topic")
QC_POLICY_NAME = "quality_control"  # the policy name QC pairs are logged under


@dataclass
class QCConfig:
    # each regular pair is labelled by this many distinct annotators (1: no repeats)
    overlap: int = 1
    # share of served pairs that are gold pairs (needs gold pairs: `gold add FILE`)
    gold_rate: float = 0.0
    # share of served pairs that are attention checks, generated from the pool
    attention_rate: float = 0.0
    # which attention checks to draw from, uniformly
    attention_kinds: list[str] = field(default_factory=lambda: list(ATTENTION_KINDS))
    # warn about an annotator whose gold accuracy falls below this ...
    min_gold_accuracy: float = 0.7
    # ... or whose attention pass rate falls below this ...
    min_attention_pass_rate: float = 0.8
    # ... once they have answered at least this many of that kind of check
    min_checks: int = 3

    @property
    def flags_texts(self) -> bool:
        """Whether attention checks are drawn whose editor works on the response itself (not by
        swapping in a donor, ``Editor.takes_donor``): the pool snapshot must flag the texts it applies to."""
        from acquisition.editors import get_editor

        return self.attention_rate > 0 and any(not get_editor(k).takes_donor for k in self.attention_kinds)

    def validate(self, where: str = "qc") -> None:
        if not 1 <= self.overlap <= 50:
            raise ConfigError(f"{where}.overlap: must be between 1 and 50 annotators per pair; got {self.overlap}.")
        for name in ("gold_rate", "attention_rate"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ConfigError(f"{where}.{name}: must be at least 0 and below 1; got {value}.")
        if self.gold_rate + self.attention_rate >= 1:
            raise ConfigError(
                f"{where}: gold_rate + attention_rate must stay below 1 so regular pairs are served; "
                f"got {self.gold_rate} + {self.attention_rate}."
            )
        if not self.attention_kinds:
            raise ConfigError(f"{where}.attention_kinds: name at least one of {', '.join(ATTENTION_KINDS)}.")
        for i, kind in enumerate(self.attention_kinds):
            if kind not in ATTENTION_KINDS:
                raise ConfigError(
                    f"{where}.attention_kinds[{i}]: unknown attention check {kind!r}; "
                    f"known: {', '.join(ATTENTION_KINDS)}."
                )
        if len(set(self.attention_kinds)) != len(self.attention_kinds):
            raise ConfigError(f"{where}.attention_kinds: each check may be named once.")
        for name in ("min_gold_accuracy", "min_attention_pass_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ConfigError(f"{where}.{name}: must be between 0 and 1; got {value}.")
        if self.min_checks < 1:
            raise ConfigError(f"{where}.min_checks: must be at least 1; got {self.min_checks}.")

    @property
    def active(self) -> bool:
        return self.overlap > 1 or self.gold_rate > 0 or self.attention_rate > 0


def qc_config(store: Store) -> QCConfig:
    """The QC config stored in the database (defaults: everything off)."""
    stored = store.get_meta("qc_config")
    return from_dict(QCConfig, json.loads(stored), "qc") if stored else QCConfig()


def qc_version(store: Store) -> int:
    return int(store.get_meta("qc_version", "0") or 0)


def save_qc_config(store: Store, config: QCConfig) -> int:
    """Validate and store ``config`` as the next QC version; returns the version."""
    config.validate("qc")
    with store.transaction():
        raised = config.overlap > qc_config(store).overlap
        version = qc_version(store) + 1
        store.set_meta("qc_config", json.dumps(to_dict(config), sort_keys=True))
        store.set_meta("qc_version", str(version))
        if raised:  # pairs that had enough labels may need more now
            store.reset_overlap()
    return version


def update_qc_config(store: Store, changes: dict[str, Any], where: str = "qc") -> QCConfig:
    """Merge ``changes`` into the stored config, validate (errors name the field) and store it."""
    config = from_dict(QCConfig, {**to_dict(qc_config(store)), **changes}, where)
    save_qc_config(store, config)
    return config


def parse_assignments(assignments: list[str], where: str = "qc") -> dict[str, Any]:
    """``["overlap=3", 'attention_kinds=["drop_answer"]']`` -> a dict; values are TOML values."""
    changes: dict[str, Any] = {}
    for text in assignments:
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{where} set: expected KEY=VALUE, got {text!r}.")
        try:
            changes[key] = tomllib.loads(f"value = {value.strip()}")["value"]
        except tomllib.TOMLDecodeError:
            raise ConfigError(
                f"{where}.{key}: {value.strip()!r} is not a TOML value (numbers as 0.1, text in quotes as "
                f"\"text\", lists as [\"a\"])."
            ) from None
    return changes


def load_qc_file(path: str | Path) -> dict[str, Any]:
    """A TOML file with the QC keys at the top level or under ``[qc]``."""
    data = load_toml(path)
    return data["qc"] if set(data) == {"qc"} else data
