"""Plain functions behind the annotator page (no Streamlit here).

Every answer names the served pair it was given on (the page binds it to the buttons drawn
with that pair), so a click can only ever land on the pair the annotator saw; ``answer``
turns what the store says into one sentence for the page.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acquisition.core.errors import AuthError, DeconfoundError, LabelError, StalePairError
from collector.serving.service import Collector
from collector.store import Store
from collector.store.people import clean_name

STRENGTHS = {"Slightly better": 1, "Clearly better": 2, "Much better": 3}
ACTIONS = {"left": "A is better", "right": "B is better", "tie": "Tie", "both_bad": "Both bad", "skip": "Skip"}
SHORTCUTS = {"left": "1", "right": "2", "tie": "3", "both_bad": "4", "skip": "S"}
MAX_REASON_CHARS = 500  # the page's limit; the store refuses more than MAX_RATIONALE_CHARS

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def progress_text(done: int, quota: int) -> str:
    """What the page says about progress: ``12 of 50 labels`` under a quota, else the count."""
    if quota:
        return f"{done} of {quota} labels"
    return f"{done} labels given" if done != 1 else "1 label given"


def escape_markdown(text: str) -> str:
    """``text`` shown literally by ``st.markdown``: Markdown syntax, links, images and HTML
    tags become plain characters (for names, groups and other user-supplied strings)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


@dataclass(frozen=True)
class AnswerResult:
    """What happened to one answer, for the page to say.

    ``kind`` is ``saved`` / ``skipped`` (written now), ``repeat`` (this pair already had this
    session's answer: nothing written), ``elsewhere`` (answered, skipped or replaced in another
    tab or after its lease: nothing written) or ``error`` (refused or not stored: the answer
    stays on screen to try again).
    """

    kind: str
    message: str
    served_pair_id: int

    @property
    def keeps_pair(self) -> bool:
        return self.kind == "error"


def answer(collector: Collector, annotator_id: int, served_pair_id: int, choice: str,
           strength_label: str | None = None, rationale: str | None = None, *,
           shown_at: float | None = None, answered_at: float | None = None,
           answered_here: bool = False) -> AnswerResult:
    """Record the annotator's action on the served pair they were shown.

    Args:
        choice: ``left``, ``right``, ``tie``, ``both_bad`` or ``skip``.
        strength_label: a key of ``STRENGTHS`` (only with a winner) or ``None``.
        shown_at / answered_at: server times of the pair being shown and the answer arriving.
        answered_here: this browser session already answered this pair (a double press), so a
            repeat is not reported as another tab's.
    """
    what = ACTIONS.get(choice, choice)
    try:
        if choice == "skip":
            if collector.skip(annotator_id, served_pair_id):
                return AnswerResult("skipped", f"Skipped pair #{served_pair_id}.", served_pair_id)
            return AnswerResult("repeat", f"Pair #{served_pair_id} was already skipped.", served_pair_id)
        if choice not in ACTIONS:
            raise LabelError(f"Unknown action {choice!r}.")
        if strength_label is not None and strength_label not in STRENGTHS:
            raise LabelError(f"Unknown strength {strength_label!r}.")
        strength = STRENGTHS[strength_label] if strength_label else None
        if strength is not None and choice not in ("left", "right"):
            raise LabelError(f"“{strength_label}” goes with A or B being better. Clear it "
                             f"(click it again) to answer “{what}”.")
        label = collector.submit(annotator_id, served_pair_id, choice, strength, rationale,
                                 shown_at=shown_at, answered_at=answered_at)
        created = label.created
    except StalePairError as exc:
        reason = str(exc).split(";")[0].replace(f"Served pair {served_pair_id}", f"Pair #{served_pair_id}")
        return AnswerResult("elsewhere", f"{reason} in another tab or window, so this answer was not "
                            "saved. Here is your current pair.", served_pair_id)
    except DeconfoundError as exc:
        return AnswerResult("error", str(exc), served_pair_id)
    if created:
        return AnswerResult("saved", f"Saved pair #{served_pair_id}: {what}.", served_pair_id)
    first = ACTIONS.get(label["choice"], label["choice"])
    if answered_here:
        return AnswerResult("repeat", f"Pair #{served_pair_id} was already saved as “{first}”.", served_pair_id)
    return AnswerResult("elsewhere", f"Pair #{served_pair_id} was already answered (“{first}”) in another "
                        "tab or window, so this answer was not saved. Here is your current pair.", served_pair_id)


def login(collector: Collector, token: str) -> dict[str, Any]:
    """Annotator row for a token; raises ``AuthError`` with a readable message."""
    if not isinstance(token, str) or not token.strip():
        raise AuthError("Enter the access token from your login link.")
    return collector.login(token)


_PARTICIPANT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def crowd_login(collector: Collector, params: Mapping[str, str]) -> dict[str, Any] | None:
    """The annotator a crowd platform's entry URL names, created on the first visit and the
    same one on every later visit; ``None`` when the study takes no crowd entry or the URL
    carries none. The platform's ids are stored as covariates, never shown as the name.

    Raises:
        AuthError: the URL carries some of the ids but not all, or an id that is not one.
    """
    from collector.serving.study import CROWD_PARAMETERS

    study, _ = collector.study()
    if not study.crowd_entry:
        return None
    names = CROWD_PARAMETERS[study.crowd_entry]
    given = {name: str(params.get(name, "")).strip() for name in names}
    if not any(given.values()):
        return None
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise AuthError(f"This study link is missing {', '.join(missing)}: open it again from the platform.")
    bad = [name for name, value in given.items() if not _PARTICIPANT_ID.match(value)]
    if bad:
        raise AuthError(f"This study link's {bad[0]} is not a valid id: open it again from the platform.")
    first = names[0]
    covariates = {"platform": study.crowd_entry, **{name.lower(): value for name, value in given.items()}}
    annotator, _created = collector.store.crowd_annotator(f"{study.crowd_entry}:{given[first]}", study.crowd_group,
                                                           covariates)
    return annotator


def signup_open(collector: Collector) -> bool:
    """Whether the login page lets a new annotator register by name (on for demo databases)."""
    return collector.store.get_meta("open_signup") == "1"


def sign_up(collector: Collector, name: str) -> tuple[dict[str, Any], str]:
    """Register a self-signed-up annotator; returns ``(annotator, token)``.

    Raises:
        AuthError: sign-up is closed.
        DeconfoundError: the name is empty, too long, has control characters or is taken.
    """
    if not signup_open(collector):
        raise AuthError("Sign-up is closed for this study: ask the researcher for a login link.")
    name = clean_name(name, "Your name")
    if collector.store.annotator_by_name(name) is not None:
        raise DeconfoundError(f"The name “{name}” is taken: choose another (a nickname is fine).")
    return collector.store.add_annotator(name, group="self-registered")


SERVER_URL_META = "server_url"  # where the app last ran for this database (written by the app)


def login_base_url(store: Store, given: str | None = None) -> tuple[str, bool]:
    """The app's address for printed login links, and whether it is known rather than guessed:
    ``given``, else ``$DECONFOUND_BASE_URL``, else where the app last ran for this database."""
    url = given or os.environ.get("DECONFOUND_BASE_URL") or store.get_meta(SERVER_URL_META)
    return (url, True) if url else ("http://localhost:8501/", False)


def personal_link(base_url: str, token: str) -> str:
    """The annotator's login link: the app's address with ``?token=``."""
    return f"{base_url.split('?')[0].rstrip('/')}/?token={token}"
