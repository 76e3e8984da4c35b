"""Optional LLM rewriter: counterfactual copies of responses written by a local causal LM.

Rule-based editors (``acquisition/editors/``) switch an attribute in microseconds, at serve
time. An LLM rewrite takes seconds, so it never runs on the request path: ``run_rewrite_job``
pre-generates rewrites in batches and stores them as variants of their base response, and
``counterfactual_pairs`` with ``source = "rewrites"`` serves the stored rows.

Rewrite-of-rewrite, after RATE (Reber et al., *RATE: Causal Explainability of Reward Models
with Imperfect Counterfactuals*, 2024): for a base response ``x`` and attribute ``a``,
``r1 = rewrite(x, a set to the opposite of x)`` and ``r2 = rewrite(r1, a set back)``. The pair
``r1`` vs ``r2`` differs in ``a`` while both sides carry the rewriter's own artefacts (tone,
paraphrase, length drift), which comparing ``x`` with ``r1`` would confound with ``a``.

Any local causal LM directory works (``AutoModelForCausalLM`` + ``AutoTokenizer``, loaded with
``local_files_only=True`` and ``HF_HUB_OFFLINE=1``: nothing is downloaded).
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acquisition.config import from_dict, load_toml
from acquisition.editors import DEFAULT_ATTRIBUTES, EDITORS, Editor
from collector.errors import ConfigError
from collector.store import Store

SOURCE = "rewriter"  # the `responses.source` of every stored rewrite


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


# ---------------------------------------------------------------------- the model
_WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "model.safetensors.index.json")
_TOKENIZER = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")


def check_model_dir(path: str | Path) -> Path:
    """A local model directory, or a ``ConfigError`` naming the path and what is missing."""
    path = Path(path).expanduser()
    if not str(path).strip() or str(path) == ".":
        raise ConfigError("No rewriter model: pass --model PATH or set model = \"PATH\" in the config.")
    if not path.exists():
        raise ConfigError(f"{path}: no such directory (the rewriter needs a local model directory).")
    if not path.is_dir():
        raise ConfigError(f"{path}: not a directory (the rewriter needs a local model directory).")
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any(any(path.glob(pattern)) for pattern in _WEIGHTS):
        missing.append("model weights (model.safetensors or pytorch_model.bin)")
    if not any((path / name).is_file() for name in _TOKENIZER):
        missing.append(f"tokenizer files (one of {', '.join(_TOKENIZER)})")
    if missing:
        raise ConfigError(f"{path}: not a transformers model directory; missing {', '.join(missing)}.")
    return path


class LLMRewriter:
    """Rewrites responses with a local causal LM, in batches, deterministically under a seed.

    Args:
        config: the rewriter config; ``config.model`` is the model directory.
        device: torch device (``"cpu"`` by default).
    """

    def __init__(self, config: RewriterConfig, device: str = "cpu") -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.config = config
        self.path = check_model_dir(config.model)
        self.name = config.name or self.path.resolve().name
        self.editor = f"llm:{self.name}"
        self.device = device
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(str(self.path), local_files_only=True)
        except ValueError as exc:
            raise ConfigError(f"{self.path}: not a causal language model transformers can load ({exc}).") from None
        except OSError as exc:
            raise ConfigError(f"{self.path}: could not load the model ({exc}).") from None
        self.model.to(device).eval()
        self.tokenizer.padding_side = "left"  # generated tokens follow every prompt directly
        if self.tokenizer.pad_token is None:
            if self.tokenizer.eos_token is None:
                raise ConfigError(f"{self.path}: the tokenizer has neither a pad nor an end-of-text token.")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.chat = bool(config.use_chat_template and getattr(self.tokenizer, "chat_template", None))
        self.context = int(getattr(self.model.config, "max_position_embeddings", 0)
                           or getattr(self.model.config, "n_positions", 0) or 10**9)
        self._torch = torch

    def prompt(self, instruction: str, request: str, response: str) -> str:
        """The full model input for one rewrite: the chat template if there is one, else plain."""
        user = self.config.user_template.format(instruction=instruction, prompt=request, response=response)
        if not self.chat:
            return self.config.plain_template.format(system=self.config.system_prompt, user=user)
        messages = [{"role": "system", "content": self.config.system_prompt}, {"role": "user", "content": user}]
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # some templates refuse a system turn: fold it into the user's
            merged = [{"role": "user", "content": f"{self.config.system_prompt}\n\n{user}"}]
            return self.tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)

    def fits(self, prompt: str) -> bool:
        """Whether the prompt plus ``max_new_tokens`` fit in the model's context."""
        n = len(self.tokenizer(prompt, add_special_tokens=not self.chat)["input_ids"])
        return n + self.config.max_new_tokens <= self.context

    def generate(self, prompts: Sequence[str], seed: int) -> list[str]:
        """Continuations of ``prompts`` (one batch), stripped; the same inputs and seed give the
        same outputs. Uses the global torch RNG inside ``fork_rng`` so callers' state is kept."""
        torch = self._torch
        enc = self.tokenizer(list(prompts), return_tensors="pt", padding=True,
                             add_special_tokens=not self.chat).to(self.device)
        kwargs: dict[str, Any] = {"max_new_tokens": self.config.max_new_tokens,
                                  "pad_token_id": self.tokenizer.pad_token_id, "do_sample": not self.config.greedy}
        if not self.config.greedy:
            kwargs.update(temperature=self.config.temperature, top_p=self.config.top_p)
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.manual_seed(seed)
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1]:]  # `(batch, new_tokens)`
        return [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]


# ---------------------------------------------------------------------- attribute semantics
def _reads_presence(editor: Editor) -> bool:
    """Whether ``is_on`` of one text tells if it shows the attribute (lists, bold, emoji, ...),
    as opposed to an amount or a relation to the base (verbosity, drop_answer, off_topic)."""
    return editor.readable_alone and type(editor).check is Editor.check


def base_state(attribute: str, text: str) -> bool:
    """Whether ``text`` shows the attribute; False where one text cannot tell (no editor, or an
    editor that measures an amount): there the base is the reference and r1 adds the attribute."""
    editor = EDITORS.get(attribute)
    return bool(editor and _reads_presence(editor) and editor.is_on(text))


def rewrite_check(attribute: str, source: str, rewrite: str, on: bool) -> dict[str, bool]:
    """Manipulation check by the attribute's rule-based editor: does ``rewrite`` (made from
    ``source``) show the attribute exactly when ``on``? Empty where the attribute has no editor.

    Presence attributes: ``is_on(rewrite) == on``. Positive controls (``drop_answer``,
    ``off_topic``): the editor's own check against the source. Amounts (``verbosity``, word
    count): the measure must rise when switching on and fall when switching off."""
    editor = EDITORS.get(attribute)
    if editor is None:
        return {}
    if _reads_presence(editor):
        return {attribute: editor.is_on(rewrite) == on}
    if editor.quality_changing:
        return {attribute: editor.check(source, rewrite, on)}
    before, after = editor.measure(source), editor.measure(rewrite)
    return {attribute: after > before if on else after < before}


# ---------------------------------------------------------------------- the batch job
@dataclass(frozen=True)
class _Item:
    prompt_id: int
    base_response_id: int
    attribute: str
    request: str
    text: str


def _edit_entry(rewriter: LLMRewriter, attribute: str, on: bool, seed: int, instruction: str,
                round_: int) -> dict[str, Any]:
    return {"on": on, "editor": rewriter.editor, "seed": seed, "direction": "add" if on else "remove",
            "instruction": instruction, "generation": rewriter.config.generation(), "round": round_}


def done_rewrites(store: Store, editor: str) -> set[tuple[int, str]]:
    """``(base response id, attribute)`` already rewritten (r1 and r2 stored) by this editor."""
    rounds: dict[tuple[int, str], set[int]] = {}
    for row in store.variants(SOURCE):
        for attribute, entry in row["edit_vector"].items():
            if entry.get("editor") == editor:
                rounds.setdefault((row["parent_response_id"], attribute), set()).add(entry.get("round"))
    return {key for key, r in rounds.items() if {1, 2} <= r}


def run_rewrite_job(store: Store, rewriter: LLMRewriter, attributes: Sequence[str] | None = None,
                    limit: int | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Pre-generate rewrite / rewrite-of-rewrite pairs for every base response and attribute.

    Resumable: pairs this rewriter already stored are skipped. Each batch is generated in full
    (every r1, then every r2) and stored in one transaction, so an interrupted run leaves only
    whole batches behind.

    Args:
        store: the database.
        rewriter: the loaded model.
        attributes: attributes to rewrite (default: the config's).
        limit: at most this many new pairs in this run.
        progress: called with one line per batch (done/total, texts/s, ETA).

    Returns:
        Counts: ``stored`` pairs, ``skipped_done`` (stored before), ``too_long`` (prompt plus
        ``max_new_tokens`` over the model's context), ``empty`` (the model wrote nothing), and
        the rate.
    """
    config = rewriter.config
    attributes = list(attributes or config.attributes)
    config.check_attributes(attributes, "--attributes")
    if limit is not None and limit < 0:
        raise ConfigError(f"--limit: must be at least 0; got {limit}.")
    pool = store.pool_snapshot()
    done = done_rewrites(store, rewriter.editor)
    todo = [
        _Item(p.id, rid, a, p.text, pool.response_text[rid])
        for p in pool.prompts for rid in p.response_ids for a in attributes
    ]
    skipped_done = sum((i.base_response_id, i.attribute) in done for i in todo)
    todo = [i for i in todo if (i.base_response_id, i.attribute) not in done]
    if limit is not None:
        todo = todo[:limit]
    counts = {"stored": 0, "skipped_done": skipped_done, "too_long": 0, "empty": 0, "generated_texts": 0}
    n_batches = -(-len(todo) // config.batch_size)
    start = time.perf_counter()
    for b in range(n_batches):
        batch = todo[b * config.batch_size:(b + 1) * config.batch_size]
        _rewrite_batch(store, rewriter, batch, counts)
        if progress:
            elapsed = time.perf_counter() - start
            done_items = min((b + 1) * config.batch_size, len(todo))
            rate = counts["generated_texts"] / elapsed if elapsed else 0.0
            eta = elapsed / done_items * (len(todo) - done_items)
            progress(f"rewrite: batch {b + 1}/{n_batches}  {done_items}/{len(todo)} pairs  "
                     f"{rate:.1f} texts/s  ETA {eta:.0f}s")
    elapsed = time.perf_counter() - start
    counts["seconds"] = round(elapsed, 3)
    counts["texts_per_second"] = round(counts["generated_texts"] / elapsed, 2) if elapsed else 0.0
    return counts


def _rewrite_batch(store: Store, rewriter: LLMRewriter, batch: list[_Item], counts: dict[str, Any]) -> None:
    config = rewriter.config
    items = ",".join(f"{i.base_response_id}:{i.attribute}" for i in batch)
    seed = zlib.crc32(f"{config.seed}:{items}".encode()) & 0x7FFFFFFF  # recorded with each rewrite
    targets = [not base_state(i.attribute, i.text) for i in batch]  # r1 flips the base
    first_instr = [_direction(config, i.attribute, t) for i, t in zip(batch, targets)]
    first_prompts = [rewriter.prompt(ins, i.request, i.text) for i, ins in zip(batch, first_instr)]
    keep = [k for k, p in enumerate(first_prompts) if rewriter.fits(p)]
    counts["too_long"] += len(batch) - len(keep)
    r1 = dict(zip(keep, rewriter.generate([first_prompts[k] for k in keep], seed))) if keep else {}
    counts["generated_texts"] += len(keep)
    second_instr = [_direction(config, i.attribute, not t) for i, t in zip(batch, targets)]
    second_prompts = {k: rewriter.prompt(second_instr[k], batch[k].request, r1[k]) for k in keep if r1[k]}
    counts["empty"] += sum(1 for k in keep if not r1[k])
    fitting = [k for k in second_prompts if rewriter.fits(second_prompts[k])]
    counts["too_long"] += len(second_prompts) - len(fitting)
    r2 = dict(zip(fitting, rewriter.generate([second_prompts[k] for k in fitting], seed + 1))) if fitting else {}
    counts["generated_texts"] += len(fitting)
    counts["empty"] += sum(1 for k in fitting if not r2[k])
    with store.transaction():
        for k in (k for k in fitting if r2[k]):
            item, on = batch[k], targets[k]
            first = {item.attribute: _edit_entry(rewriter, item.attribute, on, seed, first_instr[k], 1)}
            first_id = store.add_variant(item.base_response_id, r1[k], first,
                                         rewrite_check(item.attribute, item.text, r1[k], on), SOURCE)
            second = {item.attribute: {**_edit_entry(rewriter, item.attribute, not on, seed + 1, second_instr[k], 2),
                                       "source_response_id": first_id}}
            store.add_variant(item.base_response_id, r2[k], second,
                              rewrite_check(item.attribute, r1[k], r2[k], not on), SOURCE)
            counts["stored"] += 1
        store.set_meta("rewrite_version", str(int(store.get_meta("rewrite_version", "0") or 0) + 1))


def _direction(config: RewriterConfig, attribute: str, on: bool) -> str:
    instruction = config.instruction(attribute)
    return instruction.add if on else instruction.remove


# ---------------------------------------------------------------------- what the policy serves
@dataclass(frozen=True)
class RewritePair:
    """A stored rewrite (``first``, r1) and its rewrite-of-rewrite (``second``, r2)."""

    prompt_id: int
    base_response_id: int
    attribute: str
    editor: str  # llm:<model name>
    first_response_id: int
    first_edit_vector: dict[str, Any]
    second_response_id: int
    second_edit_vector: dict[str, Any]


def load_rewrite_pairs(store: Store) -> list[RewritePair]:
    """Every complete rewrite pair in the database whose two texts differ."""
    rows = store.variants(SOURCE)
    by_id = {r["id"]: r for r in rows}
    pairs = []
    for row in rows:
        (attribute, entry), = row["edit_vector"].items()
        first = by_id.get(entry.get("source_response_id"))
        if entry.get("round") != 2 or first is None or first["text"] == row["text"]:
            continue
        pairs.append(RewritePair(row["prompt_id"], row["parent_response_id"], attribute, entry["editor"],
                                 first["id"], first["edit_vector"], row["id"], row["edit_vector"]))
    return pairs
