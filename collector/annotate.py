"""Plain functions behind the annotator page (no Streamlit here)."""

from __future__ import annotations

from typing import Any

from collector.errors import AuthError
from collector.serving import Collector

STRENGTHS = {"Slightly better": 1, "Clearly better": 2, "Much better": 3}

GUIDELINES = """
**Your task.** Read the request, then both responses. Pick the response you would rather
receive if you had asked this yourself.

- **Left / Right**: one response is better. Judge what it *says* (correct, complete,
  relevant, clear), not how it looks. Length, lists, bold text, emoji and a friendly tone
  are not merits on their own.
- **Tie**: both are about equally good.
- **Both bad**: neither is acceptable (wrong, harmful, or misses the request).
- **Skip**: you cannot judge this one (outside your knowledge). Skipped pairs are logged.
- **Strength** and **reason** are optional but help researchers a lot.

Keyboard: **1** left, **2** right, **3** tie, **4** both bad, **S** skip.
"""


def login(collector: Collector, token: str) -> dict[str, Any]:
    """Annotator row for a token; raises ``AuthError`` with a readable message."""
    return collector.login(token)


def signup_open(collector: Collector) -> bool:
    """Whether the login page lets a new annotator register by name (on for demo databases)."""
    return collector.store.get_meta("open_signup") == "1"


def sign_up(collector: Collector, name: str) -> tuple[dict[str, Any], str]:
    """Register a self-signed-up annotator; returns ``(annotator, token)``."""
    if not signup_open(collector):
        raise AuthError("Sign-up is closed for this study: ask the researcher for a login link.")
    return collector.store.add_annotator(name, group="self-registered")


def submit_choice(collector: Collector, annotator_id: int, served_pair_id: int, choice: str,
                  strength_label: str | None, rationale: str | None) -> dict[str, Any] | None:
    """Record the annotator's action on the pair (``skip`` or a label)."""
    if choice == "skip":
        collector.skip(annotator_id, served_pair_id)
        return None
    strength = STRENGTHS.get(strength_label) if strength_label else None
    return collector.submit(annotator_id, served_pair_id, choice, strength, rationale)
