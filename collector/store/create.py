"""Creating a database: schema, the demo pool, and the default (interventional) policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from acquisition.core.config import to_dict
from acquisition.core.errors import ConfigError, DeconfoundError
from acquisition.policies import RandomisedAttributesConfig
from collector.store import Store

DEMO_POOL = Path(__file__).with_name("demo_pool.jsonl")
DEFAULT_DB = Path("data") / "deconfound.db"


def load_demo_pool(path: Path = DEMO_POOL) -> list[dict[str, Any]]:
    """The demo pool shipped with Deconfound: prompts over several task types, each with
    base responses of known, visibly different quality."""
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DeconfoundError(f"{path}:{n}: not valid JSON ({exc.msg}).") from None
        records.append(record)
    return records


def init_db(path: str | Path = DEFAULT_DB, demo: bool = False, checkpoints: str | None = None) -> dict[str, Any]:
    """Create (or open) the database, optionally load the demo pool, and make sure a policy
    is active: ``randomised_attributes`` by default, since interventional data is the point.
    ``checkpoints`` sets where its models are written (relative to the database's folder)."""
    store = Store(path)
    try:
        if checkpoints is not None:
            if not checkpoints.strip():
                raise ConfigError("--checkpoints: empty; give a folder (relative to the database's folder).")
            store.set_meta("checkpoint_dir", checkpoints)
        added = (0, 0)
        if demo:
            added = store.add_pool(load_demo_pool(), source="demo")
            if store.get_meta("open_signup") is None:
                store.set_meta("open_signup", "1")  # demo: anyone may start labelling
        policy = store.active_policy()
        if policy is None:
            policy = store.activate_policy("randomised_attributes", to_dict(RandomisedAttributesConfig()))
        return {"db": str(path), "checkpoints": str(store.checkpoints().folder),
                "new_prompts": added[0], "new_responses": added[1],
                "policy": policy["name"], "policy_version": policy["version"], **store.counts()}
    finally:
        store.close()
