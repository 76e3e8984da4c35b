"""Format detection and the parser for one row of each format; a wrong field raises
``_LineError`` naming it."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any

from acquisition.core.turns import plain_prompt

FORMATS = ("hh-rlhf", "trl", "ultrafeedback", "arena", "arena-kaggle", "csv", "pku-saferlhf", "shp",
           "ultrafeedback-raw", "nectar", "helpsteer2", "helpsteer2-ratings", "helpsteer3", "oasst2", "prism")
HH_MARKER = "\n\nAssistant:"
# Chatbot Arena's spellings, and LMArena's (arena-human-preference-140k: "both_bad")
ARENA_WINNERS = {"model_a": "chosen", "model_b": "chosen", "tie": "tie", "tie (bothbad)": "both_bad",
                 "both_bad": "both_bad"}


class _LineError(Exception):
    """A field of one line is wrong; ``parse_file`` adds the file and line."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field_name, self.message = field_name, message


# ---------------------------------------------------------------------- detection
def detect_format(row: Any, kind: str) -> str | None:
    """The format one row (the first of the file) looks like, or ``None``."""
    if not isinstance(row, dict):
        return None
    keys = set(row)
    if kind == "csv":
        return "arena-kaggle" if {"response_a", "response_b", "winner_model_a"} <= keys else "csv"
    if {"model_a", "model_b", "winner"} <= keys:
        return "arena"
    if {"response_0", "response_1", "better_response_id", "safer_response_id"} <= keys:
        return "pku-saferlhf"
    if {"history", "human_ref_A", "human_ref_B", "labels"} <= keys:
        return "shp"
    if {"instruction", "completions"} <= keys:
        return "ultrafeedback-raw"
    if {"prompt", "answers"} <= keys:
        return "nectar"
    if {"message_id", "parent_id", "role", "text"} <= keys:
        return "oasst2"
    if {"conversation_id", "conversation_history"} <= keys:
        return "prism"
    if {"response_1", "response_2", "preference_strength"} <= keys:
        return "helpsteer2"
    if {"prompt", "response", "helpfulness", "correctness"} <= keys:
        return "helpsteer2-ratings"
    if {"context", "response1", "response2", "overall_preference"} <= keys:
        return "helpsteer3"
    if {"response_a", "response_b", "winner_model_a"} <= keys:
        return "arena-kaggle"  # the Kaggle LMSYS Arena 55k layout
    if {"chosen", "rejected"} <= keys:
        if keys & {"score_chosen", "score_rejected", "chosen-rating", "rejected-rating"}:
            return "ultrafeedback"  # HuggingFaceH4's binarized copy, or argilla's cleaned one
        if "prompt" in keys:
            return "trl"
        if isinstance(row["chosen"], list):
            return "trl"  # conversational, implicit prompt
        if isinstance(row["chosen"], str) and HH_MARKER in row["chosen"]:
            return "hh-rlhf"
    return None


# ---------------------------------------------------------------------- fields
def _text(row: dict[str, Any], name: str, *, allow_empty: bool = True) -> str:
    if name not in row or row[name] is None:
        raise _LineError(name, "missing")
    value = row[name]
    if not isinstance(value, str):
        raise _LineError(name, f"expected a string, got {_type_name(value)}")
    if not allow_empty and not value.strip():
        raise _LineError(name, "empty")
    return value


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean", int: "a number", float: "a number",
            type(None): "null"}.get(type(value), type(value).__name__)


def _optional_float(row: dict[str, Any], name: str) -> float | None:
    value = row.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _LineError(name, "expected a number, got a boolean")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _LineError(name, f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise _LineError(name, f"expected a finite number, got {value!r}")
    return number


def _optional_text(row: dict[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _LineError(name, f"expected a string, got {_type_name(value)}")
    return value


def _messages(row: dict[str, Any], name: str) -> list[dict[str, str]]:
    """A list of ``{role, content}`` messages; also read as public datasets write them: the list
    as a JSON string (Chatbot Arena 100k, Arena expert 5k) and ``content`` as a list of parts
    ``[{"type": "text", "text": ...}]`` (LMArena 140k, OpenAI's message format), whose text
    parts are joined with blank lines."""
    if name not in row or row[name] is None:
        raise _LineError(name, "missing")
    value = row[name]
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise _LineError(name, "a string that starts like a JSON list of messages but is not valid JSON") from None
    if not isinstance(value, list):
        raise _LineError(name, f"expected a list of {{role, content}} messages, got {_type_name(value)}")
    out = []
    for i, message in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(message, dict):
            raise _LineError(where, f"expected a {{role, content}} message, got {_type_name(message)}")
        if not isinstance(message.get("role"), str):
            got = "missing" if message.get("role") is None else _type_name(message["role"])
            raise _LineError(f"{where}.role", f"expected a string, got {got}")
        content = message.get("content")
        if isinstance(content, list):
            content = _content_parts(content, f"{where}.content")
        if not isinstance(content, str):
            got = "missing" if content is None else _type_name(content)
            raise _LineError(f"{where}.content", f"expected a string or a list of text parts, got {got}")
        out.append({"role": message["role"], "content": content})
    return out


def _content_parts(parts: list[Any], where: str) -> str:
    texts = []
    for k, part in enumerate(parts):
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("type", "text") == "text":
            if not isinstance(part.get("text"), str):
                raise _LineError(f"{where}[{k}].text", "expected a string")
            texts.append(part["text"])
        elif not isinstance(part, dict):
            raise _LineError(f"{where}[{k}]", f"expected a {{type, text}} part, got {_type_name(part)}")
        # image and other non-text parts carry nothing an annotator can read here: skipped
    if not texts:
        raise _LineError(where, "no text part (only images or other media)")
    return "\n\n".join(texts)


def render_messages(messages: list[dict[str, str]]) -> str:
    """One message is its content; several become a ``Role: content`` transcript."""
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"{m['role'].strip().capitalize()}: {m['content']}" for m in messages)


def _split_messages(
    chosen: list[dict[str, str]], rejected: list[dict[str, str]], chosen_name: str, rejected_name: str,
    prompt: str | None,
) -> tuple[str, str, str]:
    """Prompt and both responses from two message lists (shared messages are the prompt)."""
    return _split_dialogue(chosen, rejected, chosen_name, rejected_name, prompt)[:3]


def _split_dialogue(
    first: list[dict[str, str]], second: list[dict[str, str]], first_name: str, second_name: str,
    prompt: str | None,
) -> tuple[str, str, str, bool]:
    """``(prompt, first response, second response, histories differ)`` from two message lists.

    The messages both lists share are the prompt. A multi-turn conversation whose earlier
    assistant turns differ (each side of an Arena battle saw its own earlier answers) is split by
    turns: both sides must carry the same user turns in the same places (else the line is
    refused: they answer different requests), the prompt is every turn before the last
    assistant turn, with the first list's earlier answers as the history (as the Kaggle Arena
    layout does), and the responses are the last assistant turns."""
    shared = 0
    while shared < min(len(first), len(second)) - 1 and first[shared] == second[shared]:
        shared += 1
    rest = first[shared:] + second[shared:]
    if any(m["role"] == "user" for m in rest):
        return _split_turns(first, second, first_name, second_name)
    if prompt is None:
        if shared == 0:
            raise _LineError(second_name, f"shares no opening (prompt) messages with {first_name}, "
                                          "and there is no prompt field to take the prompt from")
        prompt = render_messages(first[:shared])
    elif shared and render_messages(first[:shared]) != prompt and not (
        shared == 1 and first[0]["content"] == prompt
    ):
        # the shared messages hold more than the prompt field (earlier turns): keep them
        prompt = render_messages(first[:shared])
    for messages, name in ((first, first_name), (second, second_name)):
        if not messages[shared:]:
            raise _LineError(name, "no response after the prompt messages")
        if messages[-1]["role"] != "assistant":  # a list with the request alone has no response to compare
            raise _LineError(f"{name}[{len(messages) - 1}].role", f"the list ends with a {messages[-1]['role']!r} "
                                                                  "message, not the assistant's response")
    return prompt, render_messages(first[shared:]), render_messages(second[shared:]), False


def _split_turns(first: list[dict[str, str]], second: list[dict[str, str]], first_name: str,
                 second_name: str) -> tuple[str, str, str, bool]:
    if len(first) != len(second):
        raise _LineError(second_name, f"{len(second)} messages against {len(first)} in {first_name}: a multi-turn "
                                      "pair needs the same turns on both sides")
    for i, (a, b) in enumerate(zip(first, second)):
        if a["role"] != b["role"]:
            raise _LineError(f"{second_name}[{i}].role", f"{b['role']!r} where {first_name} has {a['role']!r}")
        if a["role"] != "assistant" and a["content"] != b["content"]:
            raise _LineError(f"{second_name}[{i}].content", f"this {a['role']} turn differs from {first_name}'s: "
                                                            "the two sides answer different requests")
    if first[-1]["role"] != "assistant":
        raise _LineError(f"{first_name}[{len(first) - 1}].role", "a conversation must end with the assistant's answer")
    differ = any(a != b for a, b in zip(first[:-1], second[:-1]))
    return render_messages(first[:-1]), first[-1]["content"], second[-1]["content"], differ


# ---------------------------------------------------------------------- one line per format
Parsed = tuple[str, str, str, str, float | None, str | None, str | None, dict[str, Any]]
# (prompt, chosen, rejected, outcome, margin, external_id, task_type, extra response fields)


def _hh(row: dict[str, Any]) -> Parsed:
    chosen, rejected = _text(row, "chosen"), _text(row, "rejected")
    common = os.path.commonprefix([chosen, rejected])
    cut = common.rfind(HH_MARKER)
    if cut < 0:
        field_name = "chosen" if HH_MARKER not in chosen else "rejected"
        if HH_MARKER in chosen and HH_MARKER in rejected:
            raise _LineError("rejected", "chosen and rejected share no dialogue up to an "
                                         "'\\n\\nAssistant:' turn")
        raise _LineError(field_name, "no '\\n\\nAssistant:' turn in the dialogue")
    prompt = chosen[:cut].strip()
    if not prompt:
        raise _LineError("chosen", "empty dialogue before the last '\\n\\nAssistant:' turn")
    after = cut + len(HH_MARKER)
    return prompt, chosen[after:].strip(), rejected[after:].strip(), "chosen", None, None, row.get("task_type"), {}


def _trl(row: dict[str, Any]) -> Parsed:
    margin = _optional_float(row, "margin")
    chosen, rejected = row.get("chosen"), row.get("rejected")
    if isinstance(chosen, list) or isinstance(rejected, list):
        prompt: str | None = None
        prompt_messages: list[dict[str, str]] = []
        if "prompt" in row and row["prompt"] is not None:
            if isinstance(row["prompt"], list):
                prompt_messages = _messages(row, "prompt")
                if not prompt_messages:
                    raise _LineError("prompt", "empty message list")
                prompt = render_messages(prompt_messages)
            else:
                prompt = _text(row, "prompt", allow_empty=False)
        c, r = _messages(row, "chosen"), _messages(row, "rejected")
        if prompt_messages:  # explicit prompt: the lists hold the responses only
            if not c:
                raise _LineError("chosen", "empty message list")
            if not r:
                raise _LineError("rejected", "empty message list")
            chosen_text, rejected_text = render_messages(c), render_messages(r)
        else:
            prompt, chosen_text, rejected_text = _split_messages(c, r, "chosen", "rejected", prompt)
        assert prompt is not None  # every branch above set it
    else:
        # a standard-format prompt ends where the answer starts (a blank line, or HH-RLHF's
        # "\n\nAssistant:" in TRL's own datasets): the request is what comes before
        prompt = plain_prompt(_text(row, "prompt", allow_empty=False))
        chosen_text, rejected_text = _text(row, "chosen"), _text(row, "rejected")
    external = _optional_text(row, "id")
    return prompt, chosen_text, rejected_text, "chosen", margin, external, _optional_text(row, "task_type"), {}


def _ultrafeedback(row: dict[str, Any]) -> Parsed:
    # trl-lib/ultrafeedback_binarized has no prompt field: the prompt is the shared first message
    prompt = _text(row, "prompt", allow_empty=False) if row.get("prompt") is not None else None
    # argilla's cleaned copy spells the ratings chosen-rating / rejected-rating and names the models
    score_chosen = _optional_float(row, "score_chosen" if "score_chosen" in row else "chosen-rating")
    score_rejected = _optional_float(row, "score_rejected" if "score_rejected" in row else "rejected-rating")
    prompt, chosen, rejected = _split_messages(
        _messages(row, "chosen"), _messages(row, "rejected"), "chosen", "rejected", prompt)
    margin = None if score_chosen is None or score_rejected is None else score_chosen - score_rejected
    extra = {"chosen_quality": score_chosen, "rejected_quality": score_rejected,
             "chosen_model": _optional_text(row, "chosen-model"), "rejected_model": _optional_text(row, "rejected-model")}
    return prompt, chosen, rejected, "chosen", margin, _optional_text(row, "prompt_id"), _optional_text(row, "task_type"), extra


def _arena(row: dict[str, Any]) -> Parsed:
    model_a, model_b = _text(row, "model_a", allow_empty=False), _text(row, "model_b", allow_empty=False)
    winner = _text(row, "winner")
    if winner not in ARENA_WINNERS:
        raise _LineError("winner", f"expected one of {', '.join(map(repr, ARENA_WINNERS))}, got {winner!r}")
    a, b = _messages(row, "conversation_a"), _messages(row, "conversation_b")
    prompt, answer_a, answer_b, differ = _split_dialogue(a, b, "conversation_a", "conversation_b", None)
    if winner == "model_b":
        chosen, rejected, models = answer_b, answer_a, (model_b, model_a)
    else:
        chosen, rejected, models = answer_a, answer_b, (model_a, model_b)
    covariates = _judge(row)
    if differ:  # a multi-turn battle: the earlier answers in the prompt are model_a's
        covariates["history_from"] = "model_a"
    extra = {"chosen_model": models[0], "rejected_model": models[1], "covariates": covariates}
    return (prompt, chosen, rejected, ARENA_WINNERS[winner], None,
            _optional_text(row, "question_id") or _optional_text(row, "id"),
            _optional_text(row, "task_type") or _optional_text(row, "category"), extra)


def _string_list(row: dict[str, Any], name: str) -> list[str]:
    """The Kaggle layout's turns: a JSON-encoded list of strings (``null`` for a missing turn)."""
    value = row.get(name)
    if value is None:
        raise _LineError(name, "missing")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise _LineError(name, "expected a JSON-encoded list of strings") from None
    if not isinstance(value, list) or not value:
        raise _LineError(name, f"expected a non-empty list of strings, got {_type_name(value)}")
    return ["" if v is None else v if isinstance(v, str) else str(v) for v in value]


def _arena_kaggle(row: dict[str, Any]) -> Parsed:
    """The Kaggle LMSYS Arena layout: ``prompt``, ``response_a``, ``response_b`` (JSON lists of
    one string per turn), ``winner_model_a`` / ``winner_model_b`` / ``winner_tie`` (0 or 1)."""
    model_a, model_b = _text(row, "model_a", allow_empty=False), _text(row, "model_b", allow_empty=False)
    prompts = _string_list(row, "prompt")
    a, b = _string_list(row, "response_a"), _string_list(row, "response_b")
    for name, turns in (("response_a", a), ("response_b", b)):
        if len(turns) != len(prompts):
            raise _LineError(name, f"{len(turns)} turns for {len(prompts)} prompts")
    flags = {}
    for name in ("winner_model_a", "winner_model_b", "winner_tie"):
        value = _optional_float(row, name)
        flags[name] = bool(value) if value is not None else False
    if sum(flags.values()) != 1:
        raise _LineError("winner_model_a", "exactly one of winner_model_a, winner_model_b and winner_tie must be 1")
    earlier = []
    for k in range(len(prompts) - 1):  # earlier turns: both sides saw the same prompts, keep side A's answers
        earlier += [{"role": "user", "content": prompts[k]}, {"role": "assistant", "content": a[k]}]
    prompt = render_messages(earlier + [{"role": "user", "content": prompts[-1]}])
    if flags["winner_model_b"]:
        chosen, rejected, models, outcome = b[-1], a[-1], (model_b, model_a), "chosen"
    else:
        chosen, rejected, models = a[-1], b[-1], (model_a, model_b)
        outcome = "tie" if flags["winner_tie"] else "chosen"
    return (prompt, chosen, rejected, outcome, None, _optional_text(row, "id"), _optional_text(row, "task_type"),
            {"chosen_model": models[0], "rejected_model": models[1]})


def _judge(row: dict[str, Any]) -> dict[str, Any]:
    """Who judged and how, kept with the imported preference: Arena's ``judge``, ``language``
    and ``tstamp`` (LMArena: ``timestamp``, ``evaluation_session_id``), where present."""
    out = {}
    for key in ("judge", "language", "tstamp", "timestamp", "evaluation_session_id", "anony", "turn"):
        value = row.get(key)
        if isinstance(value, (str, int, float, bool)) and value != "":
            out[key] = value
    return out


def _csv(row: dict[str, Any]) -> Parsed:
    prompt = _text(row, "prompt", allow_empty=False)
    return (prompt, _text(row, "chosen"), _text(row, "rejected"), "chosen", _optional_float(row, "margin"),
            _optional_text(row, "id"), _optional_text(row, "task_type"), {})


# ---------------------------------------------------------------------- the field's other schemas
# Each keeps every label the file carries: a line with several comparisons (two dimensions,
# ranked or rated completions) yields one pair per comparison, each with what it compared on.

def _choice(row: dict[str, Any], name: str, options: tuple[Any, ...]) -> Any:
    value = row.get(name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value not in options:
        raise _LineError(name, f"expected one of {', '.join(map(repr, options))}, got {value!r}")
    return value


def _pku(row: dict[str, Any]) -> list[Parsed]:
    """PKU-SafeRLHF: ``prompt``, ``response_0``/``response_1``, ``better_response_id`` and
    ``safer_response_id`` (0 or 1): two labels, kept as two pairs (``dimension`` better / safer),
    with each response's ``is_response_<k>_safe`` as its model-free covariate."""
    prompt = _text(row, "prompt", allow_empty=False)
    responses = [_text(row, "response_0"), _text(row, "response_1")]
    out: list[Parsed] = []
    for dimension, field_name in (("better", "better_response_id"), ("safer", "safer_response_id")):
        k = _choice(row, field_name, (0, 1))
        covariates = {"dimension": dimension}
        for j in (0, 1):
            if isinstance(row.get(f"is_response_{j}_safe"), bool):
                covariates[f"response_{j}_safe"] = row[f"is_response_{j}_safe"]
        out.append((prompt, responses[k], responses[1 - k], "chosen", None, _optional_text(row, "id"),
                    _optional_text(row, "task_type"), {"covariates": covariates}))
    return out


def _shp(row: dict[str, Any]) -> Parsed:
    """Stanford Human Preferences: the post (``history``), two comments ``human_ref_A``/``_B``,
    ``labels`` 1 when A was preferred; ``score_ratio`` is the margin's source (its log)."""
    prompt = _text(row, "history", allow_empty=False)
    a, b = _text(row, "human_ref_A"), _text(row, "human_ref_B")
    label = _choice(row, "labels", (0, 1))
    ratio = _optional_float(row, "score_ratio")
    covariates = {k: row[k] for k in ("domain", "post_id", "score_A", "score_B", "upvote_ratio")
                  if isinstance(row.get(k), (str, int, float)) and not isinstance(row.get(k), bool)}
    chosen, rejected = (a, b) if label == 1 else (b, a)
    return (prompt, chosen, rejected, "chosen", math.log(ratio) if ratio and ratio > 0 else None,
            _optional_text(row, "post_id"), _optional_text(row, "domain"), {"covariates": covariates})


def _ranked_pairs(prompt: str, items: list[tuple[str, float, str | None, dict[str, Any]]], higher_better: bool,
                  external: str | None, task_type: str | None, what: str) -> list[Parsed]:
    """Every pair of differently scored items, the better one chosen; each response keeps its
    score as its known quality, and the pair says what it was ranked by."""
    out: list[Parsed] = []
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            (ti, si, _, _), (tj, sj, _, _) = items[i], items[j]
            if si == sj or ti == tj:
                continue  # no preference between equal scores
            first_better = (si > sj) == higher_better
            (tc, sc, mc, cc), (tr, sr, mr, cr) = (items[i], items[j]) if first_better else (items[j], items[i])
            out.append((prompt, tc, tr, "chosen", abs(si - sj), external, task_type,
                        {"chosen_model": mc, "rejected_model": mr,
                         "chosen_quality": sc if higher_better else None, "rejected_quality": sr if higher_better else None,
                         "covariates": {"ranked_by": what, "chosen": cc, "rejected": cr}}))
    return out


def _ultrafeedback_raw(row: dict[str, Any]) -> list[Parsed]:
    """openbmb/UltraFeedback as released: ``instruction`` and up to four ``completions``, each
    with its ``model``, ``response``, ``fine-grained_score`` (the mean of the four aspect ratings)
    and ``annotations`` (helpfulness, honesty, instruction-following, truthfulness ``Rating``s):
    every pair of completions with different scores, the ratings kept."""
    prompt = _text(row, "instruction", allow_empty=False)
    completions = row.get("completions")
    if not isinstance(completions, list) or len(completions) < 2:
        raise _LineError("completions", f"expected a list of at least two completions, got {_type_name(completions)}")
    items = []
    for i, c in enumerate(completions):
        if not isinstance(c, dict):
            raise _LineError(f"completions[{i}]", f"expected a table, got {_type_name(c)}")
        text = _text(c, "response") if "response" in c else None
        if text is None:
            raise _LineError(f"completions[{i}].response", "missing")
        score = _optional_float(c, "fine-grained_score")
        if score is None:
            score = _optional_float(c, "overall_score")
        if score is None:
            raise _LineError(f"completions[{i}].fine-grained_score", "missing (and no overall_score)")
        ratings = {}
        for aspect, value in (c.get("annotations") or {}).items():
            rating = value.get("Rating") if isinstance(value, dict) else None
            if isinstance(rating, str) and rating.strip().isdigit():
                ratings[aspect] = int(rating)
        items.append((text, score, _optional_text(c, "model"), ratings))
    return _ranked_pairs(prompt, items, True, None, _optional_text(row, "source"), "fine-grained_score")


def _nectar(row: dict[str, Any]) -> list[Parsed]:
    """berkeley-nest/Nectar: an HH-style ``prompt`` and seven ``answers`` ({answer, model, rank},
    rank 1 best): every pair of differently ranked answers, the better ranked chosen."""
    prompt = plain_prompt(_text(row, "prompt", allow_empty=False))
    if prompt.startswith("Human:") and "\n\nAssistant:" not in prompt:
        prompt = prompt[len("Human:"):].strip()  # one turn: the request itself
    answers = row.get("answers")
    if not isinstance(answers, list) or len(answers) < 2:
        raise _LineError("answers", f"expected a list of at least two answers, got {_type_name(answers)}")
    items = []
    for i, a in enumerate(answers):
        if not isinstance(a, dict):
            raise _LineError(f"answers[{i}]", f"expected a table, got {_type_name(a)}")
        rank = _optional_float(a, "rank")
        if rank is None:
            raise _LineError(f"answers[{i}].rank", "missing")
        items.append((_text(a, "answer"), rank, _optional_text(a, "model"), {"rank": rank}))
    source = row.get("source")
    task_type = source if isinstance(source, str) else source[0] if isinstance(source, list) and source and \
        isinstance(source[0], str) else None  # Nectar lists the datasets a prompt came from
    return _ranked_pairs(prompt, items, False, None, task_type, "rank")


def _by_strength(row: dict[str, Any], prompt: str, first: str, second: str, strength: int, kept: tuple[str, ...],
                 task_type: str | None) -> Parsed:
    """A HelpSteer pair from its -3..3 strength (negative: the first better; 0 a tie), the
    strength as the margin and the ``kept`` text fields as covariates."""
    covariates = {k: row[k] for k in kept if isinstance(row.get(k), str) and row[k]}
    chosen, rejected = (first, second) if strength <= 0 else (second, first)
    return (prompt, chosen, rejected, "tie" if strength == 0 else "chosen", float(abs(strength)), None, task_type,
            {"covariates": covariates})


def _helpsteer2(row: dict[str, Any]) -> Parsed:
    """nvidia/HelpSteer2's preference set: ``prompt``, ``response_1``/``response_2``,
    ``preference_strength`` from -3 (response 1 much better) to 3 (response 2 much better); 0 is
    a tie; the strength is the margin and the annotators' statement is kept."""
    prompt = _text(row, "prompt", allow_empty=False)
    r1, r2 = _text(row, "response_1"), _text(row, "response_2")
    strength = _choice(row, "preference_strength", (-3, -2, -1, 0, 1, 2, 3))
    return _by_strength(row, prompt, r1, r2, strength, ("preference_statement", "preference_elaboration", "split"),
                        _optional_text(row, "task_type"))


def _helpsteer3(row: dict[str, Any]) -> Parsed:
    """nvidia/HelpSteer3: ``context`` (a message list; the last is the user's turn), ``response1``,
    ``response2``, ``overall_preference`` from -3 (response 1 much better) to 3; 0 is a tie; the
    ``domain`` and ``language`` are kept."""
    context = _messages(row, "context")
    if not context:
        raise _LineError("context", "empty message list")
    prompt = render_messages(context)
    r1, r2 = _text(row, "response1"), _text(row, "response2")
    strength = _choice(row, "overall_preference", (-3, -2, -1, 0, 1, 2, 3))
    return _by_strength(row, prompt, r1, r2, strength, ("domain", "language"), _optional_text(row, "domain"))


def _prism(row: dict[str, Any]) -> list[Parsed]:
    """PRISM's conversations: ``conversation_history``, a list of turns (``turn``, ``role`` user or
    model, ``content``, ``model_name``, ``score`` 1-100, ``if_chosen``). At each turn the participant
    rated several models' replies: every two differently scored replies are a pair, the higher
    scored chosen, scores kept as quality; the prompt is the conversation so far, with the reply
    the participant chose at each earlier turn."""
    history = row.get("conversation_history")
    if not isinstance(history, list) or not history:
        raise _LineError("conversation_history", f"expected a non-empty list of turns, got {_type_name(history)}")
    turns: dict[int, dict[str, Any]] = {}
    for i, t in enumerate(history):
        if not isinstance(t, dict):
            raise _LineError(f"conversation_history[{i}]", f"expected a table, got {_type_name(t)}")
        number = _optional_float(t, "turn")
        if number is None:
            raise _LineError(f"conversation_history[{i}].turn", "missing")
        role = _choice(t, "role", ("user", "model"))
        slot = turns.setdefault(int(number), {"user": None, "replies": []})
        if role == "user":
            slot["user"] = _text(t, "content", allow_empty=False)
        else:
            score = _optional_float(t, "score")
            slot["replies"].append((_text(t, "content"), score, _optional_text(t, "model_name"),
                                    bool(t.get("if_chosen"))))
    out: list[Parsed] = []
    so_far: list[dict[str, str]] = []
    for number in sorted(turns):
        slot = turns[number]
        if slot["user"] is None:
            raise _LineError("conversation_history", f"turn {number} has no user message")
        so_far.append({"role": "user", "content": slot["user"]})
        scored = [(text, score, model, {"chosen_in_study": chosen}) for text, score, model, chosen in slot["replies"]
                  if score is not None]
        out += _ranked_pairs(render_messages(so_far), scored, True, _optional_text(row, "conversation_id"),
                             _optional_text(row, "conversation_type"), "score")
        picked = next((text for text, _, _, chosen in slot["replies"] if chosen), None)
        if picked is None:
            break  # the conversation did not go on from this turn
        so_far.append({"role": "assistant", "content": picked})
    return out


PARSERS: dict[str, Callable[[dict[str, Any]], Parsed | list[Parsed]]] = {
    "hh-rlhf": _hh, "trl": _trl, "ultrafeedback": _ultrafeedback, "arena": _arena,
    "arena-kaggle": _arena_kaggle, "csv": _csv, "pku-saferlhf": _pku, "shp": _shp,
    "ultrafeedback-raw": _ultrafeedback_raw, "nectar": _nectar, "helpsteer2": _helpsteer2, "helpsteer3": _helpsteer3,
    "prism": _prism,
}


# ---------------------------------------------------------------------- formats read as a whole
class Oasst2:
    """OpenAssistant oasst2's message table (one message per line: ``message_id``, ``parent_id``,
    ``role`` prompter / assistant, ``text``, ``rank`` among its siblings, 0 best, or null). Pairs
    come from ranked siblings: for each prompter message, every two of its assistant replies with
    different ranks, the better ranked chosen; the prompt is the conversation from the tree's root
    to that message. Its lines only make sense together, so they are collected and paired at the
    end of the file (memory grows with the file); deleted messages are left out."""

    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}

    def add(self, row: dict[str, Any], line: int) -> None:
        message_id = _text(row, "message_id", allow_empty=False)
        parent = row.get("parent_id")
        if parent is not None and not isinstance(parent, str):
            raise _LineError("parent_id", f"expected a string or null, got {_type_name(parent)}")
        role = _choice(row, "role", ("prompter", "assistant"))
        rank = _optional_float(row, "rank")
        if row.get("deleted") is True:
            return
        self.messages[message_id] = {"parent": parent, "role": role, "text": _text(row, "text"), "rank": rank,
                                     "line": line, "lang": row.get("lang"), "tree": row.get("message_tree_id")}

    def _history(self, message_id: str) -> list[dict[str, str]] | None:
        path = []
        seen = set()
        while message_id is not None:
            if message_id in seen or message_id not in self.messages:
                return None  # a broken chain (a deleted or missing ancestor)
            seen.add(message_id)
            m = self.messages[message_id]
            path.append({"role": "user" if m["role"] == "prompter" else "assistant", "content": m["text"]})
            message_id = m["parent"]
        return path[::-1]

    def pairs(self) -> list[tuple[int, Parsed]]:
        children: dict[str, list[dict[str, Any]]] = {}
        for m in self.messages.values():
            if m["role"] == "assistant" and m["parent"] is not None and m["rank"] is not None:
                children.setdefault(m["parent"], []).append(m)
        out: list[tuple[int, Parsed]] = []
        for parent_id, replies in children.items():
            parent = self.messages.get(parent_id)
            if parent is None or parent["role"] != "prompter" or len(replies) < 2:
                continue
            history = self._history(parent_id)
            if history is None:
                continue
            prompt = render_messages(history)
            replies = sorted(replies, key=lambda m: m["line"])
            for i in range(len(replies)):
                for j in range(i + 1, len(replies)):
                    a, b = replies[i], replies[j]
                    if a["rank"] == b["rank"] or a["text"] == b["text"]:
                        continue
                    better, worse = (a, b) if a["rank"] < b["rank"] else (b, a)
                    covariates = {"ranked_by": "rank", "chosen_rank": better["rank"], "rejected_rank": worse["rank"],
                                  **({"language": parent["lang"]} if isinstance(parent["lang"], str) else {})}
                    out.append((better["line"], (prompt, better["text"], worse["text"], "chosen", None,
                                                 parent["tree"] if isinstance(parent["tree"], str) else None, None,
                                                 {"covariates": covariates})))
        return out


HELPSTEER_ASPECTS = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")


class HelpSteerRatings:
    """nvidia/HelpSteer2's rated responses (one per line: ``prompt``, ``response`` and its 0-4
    ``helpfulness``, ``correctness``, ``coherence``, ``complexity``, ``verbosity``): the responses
    to one prompt are paired by helpfulness, the better chosen, its score the quality and every
    rating kept; equal helpfulness gives no pair. Lines are grouped by prompt once all are read."""

    def __init__(self) -> None:
        self.by_prompt: dict[str, list[tuple[str, float, int, dict[str, Any]]]] = {}

    def add(self, row: dict[str, Any], line: int) -> None:
        prompt = _text(row, "prompt", allow_empty=False)
        ratings = {}
        for aspect in HELPSTEER_ASPECTS:
            value = _optional_float(row, aspect)
            if value is None and aspect in ("helpfulness",):
                raise _LineError(aspect, "missing")
            if value is not None:
                ratings[aspect] = value
        self.by_prompt.setdefault(prompt, []).append((_text(row, "response"), ratings["helpfulness"], line, ratings))

    def pairs(self) -> list[tuple[int, Parsed]]:
        out: list[tuple[int, Parsed]] = []
        for prompt, rows in self.by_prompt.items():
            items: list[tuple[str, float, str | None, dict[str, Any]]] = [
                (text, score, None, ratings) for text, score, _, ratings in rows]
            lines = {text: line for text, _, line, _ in rows}
            for parsed in _ranked_pairs(prompt, items, True, None, None, "helpfulness"):
                out.append((lines[parsed[1]], parsed))
        return out


WHOLE_FILE: dict[str, Callable[[], Oasst2 | HelpSteerRatings]] = {"oasst2": Oasst2, "helpsteer2-ratings": HelpSteerRatings}
