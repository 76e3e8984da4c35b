"""Quality control: overlap (each item labelled by k annotators), gold pairs with known
answers, attention checks, per-annotator quality, and excluding an annotator's labels.

Every quality-control pair goes through the same serving path as a regular one and is logged
as a served pair with its ``qc_kind``:

- ``regular``: proposed by the active policy.
- ``repeat``: the same item as an earlier labelled regular pair (prompt, response rows, edits,
  display position, policy, arm, propensities), served to another annotator until the item
  has ``overlap`` labels. Repeats are real labels of the item: they stay in training, in effect
  estimates and in both exports, and ``origin_served_pair_id`` links them to their item so
  agreement can be computed.
- ``gold``: a researcher-supplied pair with a known answer (``python -m collector gold add``).
- ``attention``: generated from the pool, a response against the same response without its
  answering sentence (the ``drop_answer`` editor) or against an answer to another prompt from
  the pool (the ``off_topic`` editor); both sides share the base response.

Gold and attention pairs never train a model, never enter an effect estimate and are left
out of the TRL export; the pairs export keeps them with their kind and expected answer.

The draw is made per served pair: with probability ``gold_rate`` a gold pair, with
``attention_rate`` an attention check, otherwise a repeat if an item needs one, otherwise the
policy's proposal. The QC draw is independent of the item, so a regular pair's stored
propensity (the policy's) stays the right weight for its arm; a QC pair stores its own.
"""

from __future__ import annotations

import gzip
import json
import math
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acquisition.core.config import from_dict, load_toml, to_dict
from acquisition.editors import apply_edit_vector, get_editor
from acquisition.core.errors import ConfigError, ImportFormatError
from collector.store import DEFAULT_LEASE_SECONDS, SideRecord, Store

QC_KINDS = ("regular", "repeat", "gold", "attention")
ATTENTION_KINDS = ("drop_answer", "off_topic")
QC_POLICY_NAME = "quality_control"  # the policy name QC pairs are logged under
GOLD_EXPECTED = ("first", "second", "tie", "both_bad")
_QC_STREAM = 0x9C  # the QC draw's own random stream, so a regular pair's seed still replays its proposal


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


# ---------------------------------------------------------------------- config in the database
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


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """``["overlap=3", 'attention_kinds=["drop_answer"]']`` -> a dict; values are TOML values."""
    changes: dict[str, Any] = {}
    for text in assignments:
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"qc set: expected KEY=VALUE, got {text!r}.")
        try:
            changes[key] = tomllib.loads(f"value = {value.strip()}")["value"]
        except tomllib.TOMLDecodeError:
            raise ConfigError(
                f"qc.{key}: {value.strip()!r} is not a TOML value (numbers as 0.1, lists as [\"a\"])."
            ) from None
    return changes


def load_qc_file(path: str | Path) -> dict[str, Any]:
    """A TOML file with the QC keys at the top level or under ``[qc]``."""
    data = load_toml(path)
    return data["qc"] if set(data) == {"qc"} else data


# ---------------------------------------------------------------------- gold pairs
_GOLD_SHAPES = {
    # first field, second field, expected answers allowed (mapped to first/second/tie/both_bad)
    "chosen": ("chosen", "rejected", {"chosen": "first", "tie": "tie", "both_bad": "both_bad"}),
    "left": ("left", "right", {"left": "first", "right": "second", "tie": "tie", "both_bad": "both_bad"}),
}
_GOLD_OPTIONAL = {"task_type", "id", "note", "expected"}


def parse_gold_lines(lines: list[str], source: str) -> list[dict[str, Any]]:
    """Validate gold pairs, one JSON object per line; a bad line raises with its number and field.

    Two shapes: ``{"prompt", "chosen", "rejected"}`` (the chosen response is the expected
    answer; ``"expected": "tie"`` or ``"both_bad"`` says otherwise) or ``{"prompt", "left",
    "right", "expected": "left" | "right" | "tie" | "both_bad"}``. Optional: ``task_type``,
    ``id``, ``note``, and ``<side>_quality`` (a number, used only by simulated annotators).
    The two responses are shown in a random order whichever shape is used.
    """
    items = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}:{n}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(f"{where}: not valid JSON ({exc.msg}).") from None
        if not isinstance(record, dict):
            raise ImportFormatError(f"{where}: expected a JSON object, got {type(record).__name__}.")
        shape = "left" if "left" in record or "right" in record else "chosen"
        first, second, answers = _GOLD_SHAPES[shape]
        allowed = {"prompt", first, second, f"{first}_quality", f"{second}_quality"} | _GOLD_OPTIONAL
        unknown = sorted(set(record) - allowed)
        if unknown:
            raise ImportFormatError(
                f"{where}: field {unknown[0]!r} is not a gold field; allowed: {', '.join(sorted(allowed))}."
            )
        for name in ("prompt", first, second):
            value = record.get(name)
            if not isinstance(value, str) or not value.strip():
                raise ImportFormatError(f"{where}: field {name!r}: expected a non-empty string, got {value!r}.")
        if record[first] == record[second]:
            raise ImportFormatError(f"{where}: field {second!r}: the two responses are the same text.")
        if shape == "left" and "expected" not in record:
            raise ImportFormatError(f"{where}: field 'expected': required with left/right, one of {', '.join(answers)}.")
        expected = record.get("expected", first)
        if expected not in answers:
            raise ImportFormatError(
                f"{where}: field 'expected': must be one of {', '.join(answers)}; got {expected!r}."
            )
        sides = []
        for name in (first, second):
            quality = record.get(f"{name}_quality")
            if quality is not None and (isinstance(quality, bool) or not isinstance(quality, (int, float))):
                raise ImportFormatError(f"{where}: field '{name}_quality': expected a number, got {quality!r}.")
            sides.append({"text": record[name], "quality": quality, "field": name})
        for name in ("task_type", "note"):
            if name in record and not isinstance(record[name], str):
                raise ImportFormatError(f"{where}: field {name!r}: expected a string, got {record[name]!r}.")
        items.append({
            "prompt": record["prompt"], "first": sides[0], "second": sides[1],
            "expected": answers[expected], "task_type": record.get("task_type"),
            "external_id": None if record.get("id") is None else str(record["id"]),
            "note": record.get("note"), "line": n,
        })
    if not items:
        raise ImportFormatError(f"{source}: no gold pairs in the file.")
    return items


def add_gold_file(store: Store, path: str | Path) -> tuple[int, int]:
    """Add a gold JSONL (or .jsonl.gz) file, all lines or none; returns ``(added, already_present)``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ImportFormatError(f"{path}: no such file.") from None
    return add_gold_text(store, gzip.decompress(raw) if path.suffix == ".gz" else raw, str(path))


def add_gold_text(store: Store, data: bytes | str, source: str) -> tuple[int, int]:
    """Like ``add_gold_file`` for content already read (an upload on the researcher page)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportFormatError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    return store.add_gold_items(parse_gold_lines(data.splitlines(), source), source)


def gold_frame(store: Store) -> pd.DataFrame:
    """Gold pairs with how often each was labelled and answered as expected."""
    rows = store.gold_items()
    columns = ["id", "prompt", "first_text", "second_text", "expected", "labels", "correct", "source", "line"]
    return pd.DataFrame([{c: r[c] for c in columns} for r in rows], columns=columns)


# ---------------------------------------------------------------------- serving
class QualityControl:
    """Decides, for each new served pair, whether it is a gold pair, an attention check or a
    repeat, and records it; ``Collector`` serves the policy's proposal when this returns None."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._config_key: str | None = None
        self._config = QCConfig()
        self._version = 0
        self._pool_version: int | None = None
        self._pool: dict[str, Any] = {}

    def config(self) -> tuple[QCConfig, int]:
        version = self.store.get_meta("qc_version", "0") or "0"
        with self._lock:
            if version != self._config_key:
                self._config, self._version, self._config_key = qc_config(self.store), int(version), version
            return self._config, self._version

    def serve(self, annotator: dict[str, Any], seed: int,
              lease_seconds: float = DEFAULT_LEASE_SECONDS) -> dict[str, Any] | None:
        """A new QC served pair for ``annotator`` (already recorded), or None for a regular one."""
        config, version = self.config()
        if not config.active:
            return None
        rng = np.random.default_rng([seed, _QC_STREAM])
        draw = rng.random()
        pair = None
        if draw < config.gold_rate:
            pair = self._serve_gold(annotator, config, version, seed, rng, lease_seconds)
        elif draw < config.gold_rate + config.attention_rate:
            pair = self._serve_attention(annotator, config, version, seed, rng, lease_seconds)
        if pair is None and config.overlap > 1:
            pair = self.store.serve_repeat(annotator, config.overlap, lease_seconds)
        return pair

    def _serve_gold(self, annotator: dict[str, Any], config: QCConfig, version: int, seed: int,
                    rng: np.random.Generator, lease_seconds: float) -> dict[str, Any] | None:
        with self.store.transaction():  # the unseen check and the record are one step
            unseen = self.store.unseen_gold_items(annotator["id"])
            if not unseen:
                return None
            item = unseen[int(rng.integers(len(unseen)))]
            swapped = bool(rng.random() < 0.5)
            first = SideRecord(item["first_response_id"], {}, item["first_text"], {})
            second = SideRecord(item["second_response_id"], {}, item["second_text"], {})
            left, right = (second, first) if swapped else (first, second)
            expected = item["expected"]
            if expected in ("first", "second"):
                expected = "left" if (expected == "first") != swapped else "right"
            return self.store.record_served_pair(
                annotator, item["prompt_id"], left, right, position_swapped=swapped,
                policy={"id": None, "name": QC_POLICY_NAME, "version": version}, arm="gold",
                propensity_score=config.gold_rate / len(unseen) / 2, arm_propensity=0.5,
                seed=seed, lease_seconds=lease_seconds, qc_kind="gold",
                gold_item_id=item["id"], qc_expected=expected,
            )

    def _pool_tables(self) -> dict[str, Any]:
        """Base responses by prompt and those with an answer to drop, rebuilt when the pool moves."""
        version = self.store.pool_version
        with self._lock:
            if version != self._pool_version:
                pool = self.store.pool_snapshot()
                drop = get_editor("drop_answer")
                responses = [(p.id, r) for p in pool.prompts for r in p.response_ids]
                self._pool = {
                    "snapshot": pool,
                    "prompt_of": dict((r, p) for p, r in responses),
                    "droppable": [r for _, r in responses if drop.apply(pool.response_text[r], 0) != pool.response_text[r]],
                    "n_responses": len(responses),
                }
                self._pool_version = version
            return self._pool

    def _serve_attention(self, annotator: dict[str, Any], config: QCConfig, version: int, seed: int,
                         rng: np.random.Generator, lease_seconds: float) -> dict[str, Any] | None:
        tables = self._pool_tables()
        pool = tables["snapshot"]
        kind = config.attention_kinds[int(rng.integers(len(config.attention_kinds)))]
        p_kind = config.attention_rate / len(config.attention_kinds)
        if kind == "drop_answer":
            if not tables["droppable"]:
                return None
            response_id = tables["droppable"][int(rng.integers(len(tables["droppable"])))]
            text = pool.response_text[response_id]
            prompt_id = tables["prompt_of"][response_id]
            intact_vector = {"drop_answer": {"on": False, "editor": "drop_answer", "seed": 0}}
            dropped_vector = {"drop_answer": {"on": True, "editor": "drop_answer", "seed": 0}}
            dropped_text, check = apply_edit_vector(text, dropped_vector)
            good = SideRecord(response_id, intact_vector, text, {"drop_answer": True})
            bad = SideRecord(response_id, dropped_vector, dropped_text, check)
            propensity = p_kind / len(tables["droppable"]) / 2
        else:
            servable = pool.servable
            if not servable:
                return None
            prompt = servable[int(rng.integers(len(servable)))]
            others = tables["n_responses"] - len(prompt.response_ids)
            if others < 1:  # a pool of one prompt has nothing off-topic to offer
                return None
            response_id = prompt.response_ids[int(rng.integers(len(prompt.response_ids)))]
            # the k-th base response that does not answer this prompt, in pool order, is the donor
            k, donor_id = int(rng.integers(others)), -1
            for p in pool.prompts:
                if p.id == prompt.id:
                    continue
                if k < len(p.response_ids):
                    donor_id = p.response_ids[k]
                    break
                k -= len(p.response_ids)
            prompt_id, text = prompt.id, pool.response_text[response_id]
            # the off_topic editor swaps the donor in (a built-in answer if the donor shares too
            # many words with the response); its seed names the donor so the copy can be replayed
            kept_vector = {"off_topic": {"on": False, "editor": "off_topic", "seed": donor_id}}
            swapped_vector = {"off_topic": {"on": True, "editor": "off_topic", "seed": donor_id}}
            swapped_text, check = apply_edit_vector(text, swapped_vector, donor=lambda s: pool.response_text[s])
            good = SideRecord(response_id, kept_vector, text, {"off_topic": True})
            bad = SideRecord(response_id, swapped_vector, swapped_text, check)
            propensity = p_kind / len(servable) / len(prompt.response_ids) / others / 2
        swapped = bool(rng.random() < 0.5)
        left, right = (bad, good) if swapped else (good, bad)
        return self.store.record_served_pair(
            annotator, prompt_id, left, right, position_swapped=swapped,
            policy={"id": None, "name": QC_POLICY_NAME, "version": version}, arm=f"attention:{kind}",
            propensity_score=propensity, arm_propensity=0.5, seed=seed, lease_seconds=lease_seconds,
            qc_kind="attention", qc_expected="right" if swapped else "left",
        )


# ---------------------------------------------------------------------- per-annotator quality
QUALITY_COLUMNS = [
    "annotator_id", "annotator", "group", "labels", "gold_seen", "gold_accuracy",
    "attention_seen", "attention_pass_rate", "repeats", "median_latency_ms", "skip_rate",
    "excluded", "reason", "warning",
]


def annotator_quality(store: Store, config: QCConfig | None = None) -> pd.DataFrame:
    """One row per annotator: labels given (every kind), gold pairs answered and the share
    answered as expected, attention checks answered and passed, repeats labelled, median
    latency of their labels, the share of served pairs they skipped, whether they are
    excluded and why, and a warning when a rate falls below the configured minimum.

    Accuracy and pass rates are NaN where the annotator has answered none; a tie or both-bad
    answer to a gold pair with a winner counts as wrong.
    """
    config = config or qc_config(store)
    counts: dict[tuple[int, str, str], tuple[int, int]] = {
        (r["annotator_id"], r["qc_kind"], r["status"]): (r["n"], r["as_expected"]) for r in store.quality_counts()
    }
    medians = store.median_latencies()

    def count(aid: int, kinds: tuple[str, ...], status: str, field: int = 0) -> int:
        return sum(counts.get((aid, kind, status), (0, 0))[field] for kind in kinds)

    rows = []
    for person in store.annotators():
        aid = person["id"]
        n = count(aid, QC_KINDS, "labelled")
        gold_seen, attention_seen = count(aid, ("gold",), "labelled"), count(aid, ("attention",), "labelled")
        gold_accuracy = count(aid, ("gold",), "labelled", 1) / gold_seen if gold_seen else math.nan
        attention_rate = count(aid, ("attention",), "labelled", 1) / attention_seen if attention_seen else math.nan
        n_skipped = count(aid, QC_KINDS, "skipped")
        warnings = []
        if gold_seen >= config.min_checks and gold_accuracy < config.min_gold_accuracy:
            warnings.append(f"gold accuracy {gold_accuracy:.2f} < {config.min_gold_accuracy:.2f}")
        if attention_seen >= config.min_checks and attention_rate < config.min_attention_pass_rate:
            warnings.append(f"attention {attention_rate:.2f} < {config.min_attention_pass_rate:.2f}")
        rows.append({
            "annotator_id": aid, "annotator": person["name"], "group": person["group_name"],
            "labels": n, "gold_seen": gold_seen, "gold_accuracy": float(gold_accuracy),
            "attention_seen": attention_seen, "attention_pass_rate": float(attention_rate),
            "repeats": count(aid, ("repeat",), "labelled"),
            "median_latency_ms": medians.get(aid, math.nan),
            "skip_rate": n_skipped / (n + n_skipped) if n + n_skipped else math.nan,
            "excluded": bool(person["excluded"]), "reason": person["excluded_reason"] or "",
            "warning": "; ".join(warnings),
        })
    return pd.DataFrame(rows, columns=QUALITY_COLUMNS)


def overlap_summary(store: Store) -> pd.DataFrame:
    """How many items (a regular pair with its repeats) have 0, 1, 2, ... labels."""
    counts = pd.DataFrame(store.item_label_counts(), columns=["item_id", "labels"])
    summary = counts.groupby("labels").size().rename("items").reset_index()
    return summary.astype({"labels": int, "items": int})


# ---------------------------------------------------------------------- exclusion
def exclude_annotator(store: Store, annotator_id: int, reason: str) -> dict[str, Any]:
    """Flag an annotator as excluded: their labels stay in the database, flagged, and leave
    training, effect estimates and the TRL export (the pairs export carries the flag)."""
    if not (reason or "").strip():
        raise ConfigError("annotator exclude: --reason must say why (it goes into the dataset card).")
    return store.set_annotator_excluded(annotator_id, True, reason.strip())


def include_annotator(store: Store, annotator_id: int) -> dict[str, Any]:
    """Undo an exclusion; the annotator's labels count again everywhere."""
    return store.set_annotator_excluded(annotator_id, False)
