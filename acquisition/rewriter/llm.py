"""The rewriting model: any local causal LM directory, loaded offline, batched and seeded."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acquisition.core.errors import ConfigError
from acquisition.rewriter.instructions import RewriterConfig

_WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "model.safetensors.index.json")
_TOKENIZER = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")


def check_model_dir(path: str | Path) -> Path:
    """A local model directory, or a ``ConfigError`` naming the path and what is missing."""
    path = Path(path).expanduser()
    if not str(path).strip() or str(path) == ".":
        raise ConfigError("No rewriter model: pass --model PATH or set model = \"PATH\" in the config.")
    if not path.exists():
        raise ConfigError(f"{path}: no such directory (--model needs a local model directory, or give --endpoint).")
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
        self.model.to(device).eval()  # type: ignore[arg-type]  # a device name is fine
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
            return str(self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        except Exception:  # some templates refuse a system turn: fold it into the user's
            merged = [{"role": "user", "content": f"{self.config.system_prompt}\n\n{user}"}]
            return str(self.tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True))

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
