"""Annotators and versioned policies."""

from __future__ import annotations

import json
import secrets
import time
import unicodedata
from typing import Any

from acquisition.core.errors import AuthError, DeconfoundError, NotFoundError
from acquisition.core.records import PolicySpec
from collector.store.connection import StoreBase, token_hash

MAX_NAME_CHARS = 80
MAX_OBJECTIVE_CHARS = 500
MAX_COVARIATES = 50


def clean_text(value: object, field: str, limit: int) -> str:
    """Non-empty text of at most ``limit`` characters, stripped."""
    if not isinstance(value, str):
        raise DeconfoundError(f"{field} must be text; got {type(value).__name__}.")
    value = value.strip()
    if not value:
        raise DeconfoundError(f"{field} must not be empty.")
    if len(value) > limit:
        raise DeconfoundError(f"{field} is {len(value):,} characters; at most {limit:,}.")
    return value


def clean_covariates(covariates: object) -> dict[str, str]:
    """Covariates as a table of non-empty text keys (80 characters at most) and text values."""
    if covariates is None:
        return {}
    if not isinstance(covariates, dict):
        raise DeconfoundError(f"covariates must be a table of key = value; got {type(covariates).__name__}.")
    if len(covariates) > MAX_COVARIATES:
        raise DeconfoundError(f"covariates: {len(covariates)} keys; at most {MAX_COVARIATES}.")
    out = {}
    for key, value in covariates.items():
        key = clean_name(key, "covariate key")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise DeconfoundError(f"covariates.{key}: must be text or a number; got {type(value).__name__}.")
        out[key] = clean_text(str(value), f"covariates.{key}", MAX_OBJECTIVE_CHARS)
    return out


def clean_name(name: object, field: str = "name") -> str:
    """A display name or group, stripped; refuses non-text, empty, over-long (80 characters)
    and control characters (names are shown on pages and in exports)."""
    if not isinstance(name, str):
        raise DeconfoundError(f"{field} must be text; got {type(name).__name__}.")
    if any(c in name for c in "\n\r\v\f\x85\u2028\u2029"):
        raise DeconfoundError(f"{field} must be one line; it holds a line break.")
    cleaned = " ".join(name.split())
    if not cleaned:
        raise DeconfoundError(f"{field} must not be empty.")
    if len(cleaned) > MAX_NAME_CHARS:
        raise DeconfoundError(f"{field} is {len(cleaned):,} characters; at most {MAX_NAME_CHARS}.")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") for c in cleaned):
        raise DeconfoundError(f"{field} contains control or invisible characters.")
    return cleaned


class PeopleMixin(StoreBase):
    """Annotators and versioned policies."""

    # ------------------------------------------------------------------ annotators
    def add_annotator(
        self,
        name: str,
        group: str = "default",
        covariates: dict[str, str] | None = None,
        objective: str | None = None,
        is_simulated: bool = False,
        external_id: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        """Create an annotator and return ``(row, token)``; only the token's hash is stored.

        Raises:
            DeconfoundError: an empty, over-long or non-text name or group, covariates that are
                not a table of non-empty text keys and text values, a non-text objective.
        """
        name, group = clean_name(name, "annotator name"), clean_name(group, "annotator group")
        covariates = clean_covariates(covariates)
        if objective is not None:
            objective = clean_text(objective, "objective", MAX_OBJECTIVE_CHARS)
        token = secrets.token_urlsafe(16)
        with self.transaction():
            annotator_id = self._insert("annotators", {
                "name": name, "token_hash": token_hash(token), "group_name": group,
                "objective": objective, "covariates": json.dumps(covariates or {}, sort_keys=True),
                "is_simulated": int(is_simulated), "created_at": time.time(), "external_id": external_id,
            })
        return self.annotator(annotator_id), token

    def annotator_by_external_id(self, external_id: str) -> dict[str, Any] | None:
        """The annotator a crowd platform's participant id belongs to, if they came before."""
        return self._one("SELECT * FROM annotators WHERE external_id = ?", [external_id])

    def crowd_annotator(self, external_id: str, group: str, covariates: dict[str, str]) -> tuple[dict[str, Any], bool]:
        """The annotator of a crowd participant: found by ``external_id``, else created (named
        "Participant N", never the platform id) with ``covariates``; ``(row, created)``. Two
        requests for a new participant at once create one annotator."""
        covariates = clean_covariates(covariates)
        with self.transaction():
            if (row := self.annotator_by_external_id(external_id)) is not None:
                return row, False
            number = int(self._scalar("SELECT count(*) FROM annotators WHERE external_id IS NOT NULL")) + 1
            annotator_id = self._insert("annotators", {
                "name": f"Participant {number}", "token_hash": token_hash(secrets.token_urlsafe(16)),
                "group_name": clean_name(group, "crowd group"), "objective": None,
                "covariates": json.dumps(covariates, sort_keys=True), "is_simulated": 0,
                "created_at": time.time(), "external_id": external_id,
            })
        return self.annotator(annotator_id), True

    def annotator(self, annotator_id: int) -> dict[str, Any]:
        row = self._one("SELECT * FROM annotators WHERE id = ?", [annotator_id])
        if row is None:
            raise NotFoundError(f"No annotator with id {annotator_id}.")
        return row

    def annotator_by_token(self, token: str) -> dict[str, Any]:
        row = self._one("SELECT * FROM annotators WHERE token_hash = ?", [token_hash(token.strip())])
        if row is None:
            raise AuthError("Unknown token: ask the study's researcher for your login link.")
        return row

    def annotator_by_name(self, name: str) -> dict[str, Any] | None:
        """The annotator with this display name, compared without case or extra spaces."""
        return self._one("SELECT * FROM annotators WHERE lower(name) = lower(?) ORDER BY id LIMIT 1",
                         [" ".join(str(name).split())])

    def annotators(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM annotators ORDER BY id")

    # ------------------------------------------------------------------ the suspicion probe
    def record_suspicion(self, annotator_id: int, study_version: int, labels_before: int,
                         looked_edited: str, what: str | None) -> bool:
        """Store an annotator's one answer to the suspicion probe; ``False`` (nothing written)
        when they already answered."""
        with self.transaction():
            if self._one("SELECT 1 FROM suspicion_probes WHERE annotator_id = ?", [annotator_id]):
                return False
            self._insert("suspicion_probes", {
                "annotator_id": annotator_id, "study_version": study_version, "labels_before": labels_before,
                "looked_edited": looked_edited, "what": what or None, "answered_at": time.time()})
        return True

    def suspicion_answer(self, annotator_id: int) -> dict[str, Any] | None:
        return self._one("SELECT * FROM suspicion_probes WHERE annotator_id = ?", [annotator_id])

    def suspicion_answers(self) -> list[dict[str, Any]]:
        """Every answer with the annotator's group and exclusion."""
        return self._all("SELECT sp.*, a.group_name AS annotator_group, a.excluded FROM suspicion_probes sp "
                         "JOIN annotators a ON a.id = sp.annotator_id ORDER BY sp.id")

    # ------------------------------------------------------------------ policies
    def activate_policy(self, name: str, config: dict[str, Any]) -> PolicySpec:
        """Store a policy config as the next version and make it the active one; an unknown
        policy or a config its policy would refuse is refused here too, before anything is written."""
        from acquisition.policies import parse_policy_config

        if not isinstance(config, dict):
            raise DeconfoundError(f"policy {name!r}: config must be a table; got {type(config).__name__}.")
        parse_policy_config(name, config, f"policy {name!r}")
        with self.transaction():
            version = int(self._scalar("SELECT coalesce(max(version), 0) FROM policies")) + 1
            self.db.execute("UPDATE policies SET is_active = 0 WHERE is_active = 1")
            self._insert("policies", {
                "name": name, "version": version, "config": json.dumps(config, sort_keys=True),
                "is_active": 1, "created_at": time.time(),
            })
        spec = self.active_policy()
        assert spec is not None  # activated just now
        return spec

    def active_policy(self) -> PolicySpec | None:
        """The active policy version, its config parsed (here, once)."""
        row = self._one("SELECT * FROM policies WHERE is_active = 1")
        return PolicySpec.from_row(row) if row else None

    def policies(self) -> list[dict[str, Any]]:
        """Every stored policy version in order, its config parsed."""
        rows = self._all("SELECT * FROM policies ORDER BY version")
        for row in rows:
            row["config"] = dict(PolicySpec.from_row(row).config)
        return rows
