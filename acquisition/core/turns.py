"""A request's conversation turns, read from its transcript.

Multi-turn requests are stored as transcripts: HH-RLHF's own ``Human: ...\\n\\nAssistant: ...``
form, or the ``User: ...\\n\\nAssistant: ...`` form the importers write for message lists. This
module reads the turns back, so pages show a chat and exports write real message lists. A turn
starts at a line ``Human:``, ``User:``, ``Assistant:`` or ``System:`` after a blank line (or at
the start); text that does not start with one is a single user turn. A message whose own content
holds "\\n\\nUser:" is read as two turns: the transcript form cannot tell them apart.
"""

from __future__ import annotations

import re

ROLES = {"human": "user", "user": "user", "assistant": "assistant", "system": "system"}
_TURN = re.compile(r"(?:^|\n\n)(Human|User|Assistant|System):[ \t]?", re.IGNORECASE)


def prompt_turns(text: str) -> list[dict[str, str]]:
    """``[{"role": "user" | "assistant" | "system", "content": str}, ...]`` for a request."""
    matches = list(_TURN.finditer(text))
    if not matches or matches[0].start() != 0:
        return [{"role": "user", "content": text}]
    turns = []
    for match, following in zip(matches, [*matches[1:], None]):
        end = following.start() if following is not None else len(text)
        turns.append({"role": ROLES[match.group(1).lower()], "content": text[match.end():end].strip()})
    return turns


def render_turns(turns: list[dict[str, str]]) -> str:
    """The transcript of ``turns`` (one turn: its content), the inverse of ``prompt_turns``."""
    if len(turns) == 1:
        return turns[0]["content"]
    names = {"user": "User", "assistant": "Assistant", "system": "System"}
    return "\n\n".join(f"{names.get(t['role'], t['role'].capitalize())}: {t['content']}" for t in turns)


def standard_prompt(text: str) -> str:
    """The prompt as TRL's standard (not conversational) format must carry it. TRL joins
    ``prompt + chosen`` as they are, so the prompt ends where the answer begins: a dialogue's
    transcript (``Human: ...`` / ``User: ...``) with the assistant's marker it ends on in
    HH-RLHF's own form (``\n\nAssistant: ``), a single request with a blank line."""
    match = _TURN.match(text)
    if match is not None and match.start() == 0:
        return text.rstrip() + "\n\nAssistant: "
    return text + "\n\n"


_TRAILING_ASSISTANT = re.compile(r"\n\n(Assistant):[ \t]*$", re.IGNORECASE)


def plain_prompt(text: str) -> str:
    """The inverse of ``standard_prompt``: a standard-format prompt (a TRL export's, or TRL's own
    HH-RLHF datasets' ``...\n\nAssistant:``) as the request it carries, without the trailing
    blank line or the assistant's empty turn marker."""
    stripped = text.strip()
    match = _TRAILING_ASSISTANT.search(stripped + " ")
    if match is not None and _TURN.match(stripped) is not None:
        stripped = stripped[: match.start()].rstrip()
    return stripped
