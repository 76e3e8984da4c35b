"""Researcher accounts, their sessions, login throttling and the audit log.

Passwords are hashed with argon2id (``argon2-cffi``); session tokens are random and only their
SHA-256 is stored, like annotator tokens. Failed logins are throttled per account and per client
(browser address): after ``FREE_FAILURES`` failures within ``WINDOW_SECONDS`` every further attempt
is refused unanswered until a delay has passed, doubling with each failure (30 s, 60 s, ... at most
15 minutes). A throttled attempt never checks the password, so it tells an attacker nothing.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import time
from typing import Any

from acquisition.core.errors import AuthError, DeconfoundError
from collector.store.connection import StoreBase, token_hash
from collector.store.people import clean_name

SHARED = "shared-password"  # the account name of the fallback password when no accounts exist
FREE_FAILURES = 5
CLIENT_FREE_FAILURES = 20  # one client trying many accounts
WINDOW_SECONDS = 15 * 60
FIRST_DELAY_SECONDS = 30.0
MAX_DELAY_SECONDS = 15 * 60.0
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
SESSION_HOURS = float(os.environ.get("DECONFOUND_SESSION_HOURS", "12"))

@functools.cache
def _hasher() -> Any:
    """argon2id, loaded on first use: the annotator's page never needs it, and hashing the dummy
    password at import took a tenth of a second of every server's start."""
    from argon2 import PasswordHasher

    return PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    return str(_hasher().hash("not a password anyone has"))  # unknown names cost the same time


def check_password_strength(password: object) -> str:
    if not isinstance(password, str):
        raise DeconfoundError(f"password must be text; got {type(password).__name__}.")
    if len(password) < MIN_PASSWORD_CHARS:
        raise DeconfoundError(f"password: {len(password)} characters; at least {MIN_PASSWORD_CHARS}.")
    if len(password) > MAX_PASSWORD_CHARS:
        raise DeconfoundError(f"password: {len(password):,} characters; at most {MAX_PASSWORD_CHARS:,}.")
    return password


def throttle_delay(failures: int) -> float:
    """Seconds to wait after the last failure, given failures in the window (0 while free)."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** (failures - FREE_FAILURES))


class ResearchersMixin(StoreBase):
    """Named researcher accounts, sessions, throttled logins and the audit log."""

    # ------------------------------------------------------------------ accounts
    def add_researcher(self, name: str, password: str) -> dict[str, Any]:
        name = clean_name(name, "researcher name")
        if name == SHARED:
            raise DeconfoundError(f"researcher name {SHARED!r} is reserved for the shared password.")
        digest = _hasher().hash(check_password_strength(password))
        with self.transaction():
            if self._one("SELECT id FROM researchers WHERE name = ?", [name]):
                raise DeconfoundError(f"researcher {name!r} already exists; remove them first to reset the password.")
            self._insert("researchers", {"name": name, "password_hash": digest, "created_at": time.time()})
        return {"name": name}

    def remove_researcher(self, name: str) -> None:
        with self.transaction():
            if not self._one("SELECT id FROM researchers WHERE name = ?", [name]):
                raise DeconfoundError(f"no researcher named {name!r}.")
            self.db.execute("DELETE FROM researchers WHERE name = ?", [name])
            self.db.execute("DELETE FROM researcher_sessions WHERE researcher = ?", [name])

    def researchers(self) -> list[dict[str, Any]]:
        now = time.time()
        return self._all(
            "SELECT r.name, r.created_at, (SELECT count(*) FROM researcher_sessions s WHERE s.researcher = r.name "
            "AND s.expires_at > ?) AS open_sessions, (SELECT max(at) FROM login_attempts a WHERE "
            "a.researcher = r.name AND a.outcome = 'ok') AS last_login FROM researchers r ORDER BY r.name", [now])

    def has_researchers(self) -> bool:
        return self._one("SELECT 1 AS x FROM researchers LIMIT 1") is not None

    # ------------------------------------------------------------------ logging in
    def login_wait(self, name: str, client: str, now: float | None = None) -> float:
        """Seconds before ``name`` may try again from ``client`` (0: now)."""
        now = time.time() if now is None else now
        since = now - WINDOW_SECONDS
        waits = []
        for column, value, free in (("researcher", name, 0), ("client", client, CLIENT_FREE_FAILURES - FREE_FAILURES)):
            row = self._one(f"SELECT count(*) AS n, max(at) AS last FROM login_attempts WHERE {column} = ? "
                            "AND outcome = 'failed' AND at > ?", [value, since])
            if row and row["n"]:
                waits.append(row["last"] + throttle_delay(row["n"] - free) - now)
        return max([0.0, *waits])

    def login(self, name: str, password: str, client: str = "unknown",
              shared_password: str | None = None) -> str:
        """Check a researcher's password and open a session; returns its token.

        With no researcher accounts, ``shared_password`` (``$DECONFOUND_RESEARCHER_PASSWORD``) is
        the one password, logged as ``shared-password``. Raises ``AuthError`` with one sentence:
        wrong name or password (the same words for both), or how long to wait."""
        if not isinstance(name, str) or not isinstance(password, str):
            raise AuthError("Name and password must be text.")
        name = " ".join(name.split()) or SHARED
        client = (client or "unknown")[:200]
        now = time.time()
        wait = self.login_wait(name, client, now)
        if wait > 0:
            self._attempt(name, client, "throttled", now)
            raise AuthError(f"Too many failed logins; try again in {int(wait) + 1} s.")
        accounts = self.has_researchers()
        if not accounts and not shared_password:
            raise AuthError("The researcher area is locked: add an account with `deconfound researcher add NAME` "
                            "(or set DECONFOUND_RESEARCHER_PASSWORD) and reload.")
        if accounts:
            row = self._one("SELECT password_hash FROM researchers WHERE name = ?", [name])
            ok = _verify(row["password_hash"] if row else _dummy_hash(), password) and row is not None
        else:
            name = SHARED
            ok = _verify(_hasher().hash(shared_password or ""), password)
        self._attempt(name, client, "ok" if ok else "failed", now)
        if not ok:
            raise AuthError("Wrong name or password." if accounts else "Wrong researcher password.")
        token = secrets.token_urlsafe(32)
        with self.transaction():
            self.db.execute("DELETE FROM researcher_sessions WHERE expires_at < ?", [now])
            self._insert("researcher_sessions", {"token_hash": token_hash(token), "researcher": name, "client": client,
                                                 "created_at": now, "expires_at": now + SESSION_HOURS * 3600})
        self.audit(name, "login", {"client": client})
        return token

    def _attempt(self, name: str, client: str, outcome: str, now: float) -> None:
        with self.transaction():
            self._insert("login_attempts", {"researcher": name, "client": client, "outcome": outcome, "at": now})

    def session_researcher(self, token: str | None) -> str | None:
        """The researcher a session token belongs to, or ``None`` (unknown, expired, removed)."""
        if not token or not isinstance(token, str):
            return None
        row = self._one("SELECT researcher FROM researcher_sessions WHERE token_hash = ? AND expires_at > ?",
                        [token_hash(token), time.time()])
        if row is None:
            return None
        if row["researcher"] != SHARED and not self._one("SELECT 1 AS x FROM researchers WHERE name = ?",
                                                         [row["researcher"]]):
            return None
        return row["researcher"]

    def logout(self, token: str | None) -> None:
        if token:
            researcher = self.session_researcher(token)
            with self.transaction():
                self.db.execute("DELETE FROM researcher_sessions WHERE token_hash = ?", [token_hash(token)])
            if researcher:
                self.audit(researcher, "logout")

    # ------------------------------------------------------------------ audit
    def audit(self, researcher: str, action: str, detail: dict[str, Any] | None = None) -> None:
        """Record who did what (policy activated, QC or study changed, annotator excluded, export)."""
        with self.transaction():
            self._insert("audit_log", {"at": time.time(), "researcher": researcher, "action": action,
                                       "detail": json.dumps(detail or {}, sort_keys=True, default=str)})

    def audit_log(self, limit: int = 200) -> list[dict[str, Any]]:
        return self._all("SELECT at, researcher, action, detail FROM audit_log ORDER BY id DESC LIMIT ?", [limit])


def _verify(digest: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return bool(_hasher().verify(digest, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
