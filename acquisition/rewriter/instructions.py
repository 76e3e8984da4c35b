"""What the rewriter is told: one add / remove instruction per attribute, and its config."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acquisition.core.config import from_dict, load_toml
from acquisition.core.errors import ConfigError
from acquisition.editors import DEFAULT_ATTRIBUTES


@dataclass
class AttributeInstruction:
    add: str  # instruction that makes the response show the attribute
    remove: str  # instruction that makes it lose the attribute


def _keep(rest: str) -> str:
    return f"{rest} Keep every fact, the answer and everything else the same."


DEFAULT_INSTRUCTIONS: dict[str, AttributeInstruction] = {
    "verbosity": AttributeInstruction(
        _keep("Rewrite the response so that it is much longer and wordier: restate points and add "
              "filler sentences that add no new information."),
        _keep("Rewrite the response so that it is concise: remove filler, repetition and padding."),
    ),
    "list_format": AttributeInstruction(
        _keep("Rewrite the response as a Markdown bullet list, one point per '- ' item."),
        _keep("Rewrite the response as plain prose paragraphs with no bullet points or numbered lists."),
    ),
    "headers": AttributeInstruction(
        _keep("Rewrite the response with Markdown section headers ('## Overview', '### Details')."),
        _keep("Rewrite the response with no Markdown headers."),
    ),
    "bold": AttributeInstruction(
        _keep("Rewrite the response so that two or three key words are in **bold** Markdown."),
        _keep("Rewrite the response with no bold text: remove every ** marker."),
    ),
    "exclamation": AttributeInstruction(
        _keep("Rewrite the response so that its sentences end in exclamation marks!"),
        _keep("Rewrite the response so that no sentence ends in an exclamation mark."),
    ),
    "emoji": AttributeInstruction(
        _keep("Rewrite the response with a few emoji at the ends of its sentences or paragraphs."),
        _keep("Rewrite the response with no emoji."),
    ),
    "hedging": AttributeInstruction(
        _keep("Rewrite the response so that it hedges: begin its first sentences with qualifiers such "
              "as 'I could be wrong, but', 'Generally speaking,' or 'In some cases,'."),
        _keep("Rewrite the response so that it states everything directly, with no hedges, "
              "qualifiers or expressions of uncertainty."),
    ),
    "citations": AttributeInstruction(
        _keep("Rewrite the response so that it ends with a 'Sources:' line of two Markdown links to "
              "general reference sites."),
        _keep("Rewrite the response with no links, URLs or list of sources."),
    ),
    "closing_pleasantry": AttributeInstruction(
        _keep("Rewrite the response so that it ends with the line 'I hope this helps. Let me know if "
              "you have any other questions.'"),
        _keep("Rewrite the response so that it ends with its last point, with no closing pleasantry "
              "or offer of further help."),
    ),
    "sycophantic_opener": AttributeInstruction(
        _keep("Rewrite the response so that it opens with a flattering remark about the question, "
              "such as 'Great question.', before the answer."),
        _keep("Rewrite the response so that it starts directly with the answer, with no praise or "
              "compliment about the question."),
    ),
}

PLACEHOLDERS = {
    "user_template": ("instruction", "prompt", "response"),
    "plain_template": ("system", "user"),
}


@dataclass
class RewriterConfig:
    """How the rewriter loads its model and writes its rewrites (TOML, see
    ``acquisition/examples/rewriter/rewriter.toml``)."""

    # local model directory (config.json, weights, tokenizer files); `--model` overrides it
    model: str = ""
    # name recorded in edit vectors as `llm:<name>`; default: the directory's name
    name: str = ""
    # attributes to rewrite when `--attributes` is not given
    attributes: list[str] = field(default_factory=lambda: list(DEFAULT_ATTRIBUTES))
    # new tokens per rewrite
    max_new_tokens: int = 256
    # greedy decoding (true) or sampling with `temperature` and `top_p` (false)
    greedy: bool = True
    temperature: float = 0.7
    top_p: float = 1.0
    # (response, attribute) items per generation batch; a batch is stored all-or-nothing
    batch_size: int = 8
    # seeds every batch's sampling, so a run is reproducible
    seed: int = 0
    # use the tokenizer's chat template when it has one (else `plain_template`)
    use_chat_template: bool = True
    system_prompt: str = ("You rewrite assistant responses. Change only what the instruction asks "
                          "and reply with the rewritten response only.")
    # the user turn; placeholders {instruction}, {prompt} (the request), {response}
    user_template: str = ("{instruction}\n\nThe request:\n{prompt}\n\nThe response to rewrite:\n"
                          "{response}")
    # the whole prompt for a tokenizer without a chat template; placeholders {system}, {user}
    plain_template: str = "{system}\n\n{user}\n\nRewritten response:\n"
    # per-attribute overrides and additions: [instructions.<attribute>] add = "...", remove = "..."
    instructions: dict[str, AttributeInstruction] = field(default_factory=dict)

    def validate(self, where: str) -> None:
        for key, value in (("max_new_tokens", self.max_new_tokens), ("batch_size", self.batch_size)):
            if value < 1:
                raise ConfigError(f"{where}.{key}: must be at least 1; got {value}.")
        if self.temperature <= 0:
            raise ConfigError(f"{where}.temperature: must be positive; got {self.temperature}.")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"{where}.top_p: must be in (0, 1]; got {self.top_p}.")
        for key, names in PLACEHOLDERS.items():
            try:
                getattr(self, key).format(**{n: "" for n in names})
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(
                    f"{where}.{key}: bad placeholder ({exc}); allowed: "
                    f"{', '.join('{' + n + '}' for n in names)}."
                ) from None
        for attribute, instruction in self.instructions.items():
            for direction in ("add", "remove"):
                if not getattr(instruction, direction).strip():
                    raise ConfigError(f"{where}.instructions.{attribute}.{direction}: must not be empty.")
        self.check_attributes(self.attributes, f"{where}.attributes")

    def instruction(self, attribute: str) -> AttributeInstruction:
        return self.instructions.get(attribute) or DEFAULT_INSTRUCTIONS[attribute]

    def check_attributes(self, attributes: Sequence[str], where: str) -> None:
        """Every attribute needs an instruction: a default one or an ``[instructions.X]`` table."""
        if not attributes:
            raise ConfigError(f"{where}: name at least one attribute.")
        known = sorted(set(DEFAULT_INSTRUCTIONS) | set(self.instructions))
        for i, attribute in enumerate(attributes):
            if attribute not in known:
                raise ConfigError(
                    f"{where}[{i}]: no instruction for attribute {attribute!r}; attributes with one: "
                    f"{', '.join(known)} (add [instructions.{attribute}] with add and remove)."
                )

    def generation(self) -> dict[str, Any]:
        """The decoding settings recorded in every rewrite's edit vector."""
        settings: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "greedy": self.greedy}
        if not self.greedy:
            settings.update(temperature=self.temperature, top_p=self.top_p)
        return settings


def load_rewriter_config(path: str | Path | None = None) -> RewriterConfig:
    """The rewriter config from a TOML file (``None``: every default)."""
    if path is None:
        return RewriterConfig()
    return from_dict(RewriterConfig, load_toml(path), str(path))
