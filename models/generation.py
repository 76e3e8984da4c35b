"""One text-generation client, two back-ends: a local transformers model directory, or any
OpenAI-compatible HTTP endpoint (what vLLM, llama.cpp's server and TGI serve).

Both take chat conversations (``[{"role", "content"}]``) and decoding settings and return one
text per conversation; the same command runs on this machine's CPU or against a cluster::

    LocalGenerator("path/to/model")
    HTTPGenerator("http://host:8000/v1", "meta-llama/Llama-3.1-8B-Instruct", concurrency=32)

The HTTP client sends ``POST {endpoint}/chat/completions`` with at most ``concurrency``
requests in flight, a timeout per request, and retries with exponential backoff (and jitter)
on connection errors, timeouts, 429 and 5xx; a 4xx other than 429 is the caller's mistake and
fails at once with the server's message. Nothing is downloaded: a local model is loaded with
``local_files_only`` and ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from acquisition.core.errors import ConfigError, DeconfoundError
from acquisition.rewriter import RewriterConfig, check_model_dir

Message = dict[str, str]


MAX_BODY_BYTES = 16 * 1024 * 1024  # the most of one HTTP reply read: a chat completion is a few kB

class GenerationError(DeconfoundError):
    """A generation request failed for good (after its retries)."""


@dataclass(frozen=True)
class Decoding:
    """Decoding settings, recorded with everything generated under them."""

    max_new_tokens: int = 256
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0

    def validate(self, where: str = "decoding") -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"{where}.max_new_tokens: must be at least 1; got {self.max_new_tokens}.")
        if self.temperature < 0:
            raise ConfigError(f"{where}.temperature: must be 0 (greedy) or positive; got {self.temperature}.")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"{where}.top_p: must be in (0, 1]; got {self.top_p}.")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Generator(Protocol):
    """What every back-end does: ``chat(conversations, decoding, seeds) -> texts``."""

    name: str  # the model's name as recorded with what it writes
    backend: str  # "transformers" or "openai"
    batch_size: int  # conversations per call the caller should send

    def chat(self, conversations: Sequence[Sequence[Message]], decoding: Decoding,
             seeds: Sequence[int]) -> list[str]: ...


class LocalGenerator:
    """A local causal LM directory through transformers (CPU by default). Greedy decoding runs
    ``batch_size`` conversations per ``generate`` call (left-padded; the same texts as one at a
    time, tested); sampling runs one conversation at a time, each seeded by its own seed, so a
    text does not depend on which other conversations share its batch."""

    backend = "transformers"

    def __init__(self, path: str | Path, name: str | None = None, device: str = "cpu", batch_size: int = 8,
                 plain_template: str = "{system}{user}\n\nAssistant:") -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.path = check_model_dir(path)
        self.name = name or self.path.resolve().name
        self.device, self.batch_size, self.plain_template = device, batch_size, plain_template
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(str(self.path), local_files_only=True)
        except (ValueError, OSError) as exc:
            raise ConfigError(f"{self.path}: could not load a causal language model ({exc}).") from None
        self.model.to(device).eval()  # type: ignore[arg-type]
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.chat_template = bool(getattr(self.tokenizer, "chat_template", None))
        self._torch = torch
        self._lock = threading.Lock()  # one generate() at a time on this model

    def render(self, messages: Sequence[Message]) -> str:
        """The model input for one conversation: its chat template, else ``plain_template``."""
        if self.chat_template:
            try:
                return str(self.tokenizer.apply_chat_template(list(messages), tokenize=False,
                                                              add_generation_prompt=True))
            except Exception:  # noqa: BLE001 - some templates refuse a system turn: fold it in
                pass
        system = "".join(m["content"] + "\n\n" for m in messages if m["role"] == "system")
        user = "\n\n".join(m["content"] for m in messages if m["role"] != "system")
        return self.plain_template.format(system=system, user=user)

    def chat(self, conversations: Sequence[Sequence[Message]], decoding: Decoding,
             seeds: Sequence[int]) -> list[str]:
        if decoding.temperature == 0:  # greedy needs no seed: generate in batches
            return self._greedy_batches(conversations, decoding)
        torch = self._torch
        out: list[str] = []
        with self._lock, torch.inference_mode():
            for messages, seed in zip(conversations, seeds):  # seeded one by one: batch-independent
                enc = self.tokenizer([self.render(messages)], return_tensors="pt",
                                     add_special_tokens=not self.chat_template).to(self.device)
                kwargs: dict[str, Any] = {"max_new_tokens": decoding.max_new_tokens,
                                          "pad_token_id": self.tokenizer.pad_token_id,
                                          "do_sample": decoding.temperature > 0}
                if decoding.temperature > 0:
                    kwargs.update(temperature=decoding.temperature, top_p=decoding.top_p)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(seed))
                    tokens = self.model.generate(**enc, **kwargs)
                new = tokens[0, enc["input_ids"].shape[1]:]
                out.append(str(self.tokenizer.decode(new, skip_special_tokens=True)).strip())
        return out


    def _greedy_batches(self, conversations: Sequence[Sequence[Message]], decoding: Decoding) -> list[str]:
        """Greedy continuations, ``batch_size`` conversations per ``generate`` call (left-padded)."""
        torch = self._torch
        out: list[str] = []
        with self._lock, torch.inference_mode():
            for start in range(0, len(conversations), max(1, self.batch_size)):
                chunk = [self.render(m) for m in conversations[start:start + max(1, self.batch_size)]]
                enc = self.tokenizer(chunk, return_tensors="pt", padding=True,
                                     add_special_tokens=not self.chat_template).to(self.device)
                tokens = self.model.generate(**enc, max_new_tokens=decoding.max_new_tokens, do_sample=False,
                                             pad_token_id=self.tokenizer.pad_token_id)
                new = tokens[:, enc["input_ids"].shape[1]:]
                out += [str(t).strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        return out


class HTTPGenerator:
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint.

    Args:
        endpoint: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the served model's name (sent as ``model``, recorded with what it writes).
        concurrency: requests in flight at once (a vLLM server batches them itself).
        timeout: seconds per request before it is abandoned and retried.
        retries: further attempts after the first; waits ``backoff * 2**k`` (+ jitter) between.
        api_key: sent as a bearer token (default: ``OPENAI_API_KEY`` if set).
    """

    backend = "openai"

    def __init__(self, endpoint: str, model: str, concurrency: int = 8, timeout: float = 120.0,
                 retries: int = 5, backoff: float = 1.0, api_key: str | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"--endpoint: must start with http:// or https://; got {endpoint!r}.")
        if not model.strip():
            raise ConfigError("--model: name the model the endpoint serves (its `model` field).")
        for key, value in (("concurrency", concurrency), ("timeout", timeout)):
            if value <= 0:
                raise ConfigError(f"--{key}: must be positive; got {value}.")
        if retries < 0:
            raise ConfigError(f"--retries: must be at least 0; got {retries}.")
        self.endpoint = endpoint.rstrip("/")
        self.name = model
        self.concurrency, self.timeout, self.retries, self.backoff = concurrency, timeout, retries, backoff
        self.batch_size = concurrency
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._sleep = sleep
        self.stats = {"requests": 0, "retries": 0, "failures": 0}
        self._stats_lock = threading.Lock()

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(f"{self.endpoint}/chat/completions", data=json.dumps(body).encode(),
                                         headers=headers, method="POST")
        last = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                self._count("retries")
                self._sleep(self.backoff * 2 ** (attempt - 1) * (1 + 0.25 * random.random()))
            self._count("requests")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - configured URL
                    data = response.read(MAX_BODY_BYTES + 1)  # a server's reply is capped, never read whole
                if len(data) > MAX_BODY_BYTES:
                    self._count("failures")
                    raise GenerationError(f"{self.endpoint}: a reply of more than {MAX_BODY_BYTES:,} bytes for model "
                                          f"{self.name!r}; refused (nothing of it is stored).")
                return json.loads(data.decode("utf-8"))
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:300]
                if exc.code != 429 and exc.code < 500:
                    self._count("failures")
                    raise GenerationError(f"{self.endpoint}: HTTP {exc.code} for model {self.name!r}: {detail}") from None
                last = f"HTTP {exc.code}: {detail}"
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                last = f"not JSON ({exc})"
        self._count("failures")
        raise GenerationError(f"{self.endpoint}: gave up after {self.retries + 1} attempts ({last}).")

    def _one(self, messages: Sequence[Message], decoding: Decoding, seed: int) -> str:
        body = {"model": self.name, "messages": list(messages), "max_tokens": decoding.max_new_tokens,
                "temperature": decoding.temperature, "top_p": decoding.top_p, "seed": int(seed), "n": 1}
        reply = self._post(body)
        try:
            return str(reply["choices"][0]["message"]["content"] or "").strip()
        except (KeyError, IndexError, TypeError):
            raise GenerationError(f"{self.endpoint}: a reply without choices[0].message.content: "
                                  f"{json.dumps(reply)[:300]}") from None

    def chat(self, conversations: Sequence[Sequence[Message]], decoding: Decoding,
             seeds: Sequence[int]) -> list[str]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda cs: self._one(cs[0], decoding, cs[1]), zip(conversations, seeds)))


class GeneratorRewriter:
    """The rewriter's interface (``prompt``, ``fits``, ``generate``, as ``LLMRewriter``) over any
    back-end, so ``python -m collector rewrite --endpoint ...`` writes rewrite and rewrite-of-rewrite
    pairs with a served model. A served model's context is the server's business: ``fits`` lets
    everything through, and a request the server refuses fails its batch (stored: nothing)."""

    def __init__(self, config: RewriterConfig, generator: Generator) -> None:
        self.config = config
        self.generator = generator
        self.name = config.name or generator.name
        self.editor = f"llm:{self.name}"

    def prompt(self, instruction: str, request: str, response: str) -> list[Message]:
        user = self.config.user_template.format(instruction=instruction, prompt=request, response=response)
        return [{"role": "system", "content": self.config.system_prompt}, {"role": "user", "content": user}]

    def fits(self, prompt: Sequence[Message]) -> bool:
        return True

    def generate(self, prompts: Sequence[Sequence[Message]], seed: int) -> list[str]:
        c = self.config
        decoding = Decoding(c.max_new_tokens, 0.0 if c.greedy else c.temperature, c.top_p)
        return self.generator.chat(prompts, decoding, [seed + k for k in range(len(prompts))])


def make_generator(model: str, endpoint: str | None = None, **options: Any) -> Generator:
    """``HTTPGenerator(endpoint, model)`` with an endpoint, else ``LocalGenerator(model)``
    (a local model directory). ``options`` go to that back-end (unknown ones are refused)."""
    if endpoint:
        allowed = {"concurrency", "timeout", "retries", "backoff", "api_key"}
        unknown = set(options) - allowed
        if unknown:
            raise ConfigError(f"--{sorted(unknown)[0].replace('_', '-')}: only for a local model, not --endpoint.")
        return HTTPGenerator(endpoint, model, **options)
    allowed = {"device", "batch_size", "name"}
    unknown = set(options) - allowed
    if unknown:
        raise ConfigError(f"--{sorted(unknown)[0].replace('_', '-')}: only with --endpoint.")
    return LocalGenerator(model, **options)
