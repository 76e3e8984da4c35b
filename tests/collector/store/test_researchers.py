"""Researcher accounts: argon2 hashes, throttled logins per account and per client, sessions
that expire or end with the account, and the audit log."""

import time

import pytest

from acquisition.core.errors import AuthError, DeconfoundError
from collector.store import Store
from collector.store import researchers as r


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "r.db")
    s.add_researcher("alice", "correct horse battery")
    yield s
    s.close()


def test_passwords_are_hashed_with_argon2id_and_checked(store):
    digest = store._one("SELECT password_hash FROM researchers WHERE name = 'alice'")["password_hash"]
    assert digest.startswith("$argon2id$") and "correct horse" not in digest
    token = store.login("alice", "correct horse battery", "10.0.0.1")
    assert store.session_researcher(token) == "alice"
    assert store._one("SELECT count(*) AS n FROM researcher_sessions WHERE token_hash = ?", [token])["n"] == 0
    with pytest.raises(AuthError, match="Wrong name or password"):
        store.login("alice", "wrong", "10.0.0.1")
    with pytest.raises(AuthError, match="Wrong name or password"):  # the same words for an unknown name
        store.login("mallory", "correct horse battery", "10.0.0.1")


@pytest.mark.parametrize("name, password, message", [
    ("bob", "short", "at least 10"), ("", "long enough password", "must not be empty"),
    ("alice", "another long password", "already exists"), (r.SHARED, "long enough password", "reserved"),
    ("bob", 12345678901, "must be text"), ("bob", "x" * 2000, "at most 1,024"),
])
def test_bad_accounts_are_refused(store, name, password, message):
    with pytest.raises(DeconfoundError, match=message):
        store.add_researcher(name, password)
    assert [row["name"] for row in store.researchers()] == ["alice"]


def test_failed_logins_are_throttled_per_account_and_the_password_is_not_checked(store):
    for _ in range(r.FREE_FAILURES):
        with pytest.raises(AuthError, match="Wrong"):
            store.login("alice", "guess", "10.0.0.1")
    # the sixth attempt is refused without looking at the password, even the right one, from anywhere
    for password, client in (("guess", "10.0.0.1"), ("correct horse battery", "10.0.0.2")):
        with pytest.raises(AuthError, match=r"Too many failed logins; try again in \d+ s"):
            store.login("alice", password, client)
    wait = store.login_wait("alice", "10.0.0.3")
    assert 25 < wait <= r.FIRST_DELAY_SECONDS
    # after the delay one more try is allowed, and the next delay doubles
    later = time.time() + r.FIRST_DELAY_SECONDS + 1
    assert store.login_wait("alice", "10.0.0.3", now=later) == 0
    assert r.throttle_delay(r.FREE_FAILURES + 1) == 2 * r.FIRST_DELAY_SECONDS
    assert r.throttle_delay(100) == r.MAX_DELAY_SECONDS


def test_one_client_trying_many_names_is_throttled(store):
    for i in range(r.CLIENT_FREE_FAILURES):
        with pytest.raises(AuthError, match="Wrong"):
            store.login(f"user{i}", "guess", "10.9.9.9")
    with pytest.raises(AuthError, match="Too many failed logins"):
        store.login("alice", "correct horse battery", "10.9.9.9")
    assert store.session_researcher(store.login("alice", "correct horse battery", "10.0.0.1")) == "alice"


def test_sessions_end_on_logout_expiry_and_removal(store, monkeypatch):
    token = store.login("alice", "correct horse battery")
    store.logout(token)
    assert store.session_researcher(token) is None
    monkeypatch.setattr(r, "SESSION_HOURS", -1.0)
    assert store.session_researcher(store.login("alice", "correct horse battery")) is None
    monkeypatch.setattr(r, "SESSION_HOURS", 1.0)
    token = store.login("alice", "correct horse battery")
    store.remove_researcher("alice")
    assert store.session_researcher(token) is None
    assert store.session_researcher("forged") is None and store.session_researcher(None) is None


def test_the_shared_password_works_only_while_no_account_exists(tmp_path):
    s = Store(tmp_path / "s.db")
    with pytest.raises(AuthError, match="locked"):
        s.login("", "anything")
    assert s.session_researcher(s.login("", "s3cret-shared", shared_password="s3cret-shared")) == r.SHARED
    with pytest.raises(AuthError, match="Wrong researcher password"):
        s.login("", "guess", shared_password="s3cret-shared")
    s.add_researcher("alice", "correct horse battery")
    with pytest.raises(AuthError, match="Wrong name or password"):
        s.login("", "s3cret-shared", shared_password="s3cret-shared")
    s.close()


def test_the_audit_log_names_who_did_what(tmp_path, capsys):
    from collector.cli import main

    db = str(tmp_path / "a.db")
    assert main(["init", "--db", db]) == 0
    # a policy is built on the pool before it is activated: on an empty pool it is refused, unaudited
    assert main(["policy", "apply", "acquisition/examples/observational.toml", "--db", db]) == 1
    assert "cannot be built on this pool" in capsys.readouterr().err
    assert main(["init", "--demo", "--db", db]) == 0
    assert main(["policy", "apply", "acquisition/examples/observational.toml", "--db", db]) == 0
    assert main(["qc", "set", "overlap=2", "--db", db]) == 0
    # the export writes nothing to the database, so it is not in the log (the Data page's export is)
    assert main(["export", "--format", "pairs", "--out", str(tmp_path / "p.jsonl"), "--db", db]) == 0
    capsys.readouterr()
    assert main(["audit", "--db", db]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[2] for line in out] == ["policy activated", "QC changed"]
    assert all(line.split("\t")[1].startswith("cli:") for line in out)
