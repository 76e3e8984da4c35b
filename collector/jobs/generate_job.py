"""Pool generation (``python -m collector generate``): responses to a prompts file from one or
several models, local or served, stored as base responses with how they were generated.

Work is a list of items ``(prompt, model, sample k)``; sample ``k`` is decoded at
``temperatures[k % len(temperatures)]`` with a seed derived from the prompt, the model and
``k``, so a rerun asks for exactly what is missing. Each batch is stored in one transaction
(the model's name as the response's ``model``, and ``generation``: backend, decoding, sample,
seed), so a run that is killed leaves whole batches behind, and the next run skips every item
already stored: no response is written twice.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acquisition.core.errors import ConfigError, ImportFormatError
from acquisition.core.pool import text_hash
from collector.io.importers import check_text
from collector.store import Store
from models.generation import Decoding, GenerationError, Generator

SYSTEM_PROMPT = "You are a helpful assistant."


@dataclass(frozen=True)
class PromptRecord:
    text: str
    task_type: str
    line: int


@dataclass(frozen=True)
class _Item:
    prompt: PromptRecord
    generator: int  # index into the generators
    sample: int
    temperature: float
    seed: int


def read_prompts(path: str | Path) -> list[PromptRecord]:
    """Prompts from a ``.txt`` file (one per line) or JSON Lines (``{"prompt": ..., "task_type"?}``);
    a bad line is an ``ImportFormatError`` naming the file and line; repeated prompts count once."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--prompts: {path}: no such file.")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    out, seen = [], set()
    jsonl = path.suffix in (".jsonl", ".json")
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if jsonl:
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ImportFormatError(f"{path}, line {n}: not JSON ({exc.msg}).") from None
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
                raise ImportFormatError(f"{path}, line {n}: field 'prompt' must be a string.")
            text, task = row["prompt"].strip(), row.get("task_type") or "general"
            if not isinstance(task, str):
                raise ImportFormatError(f"{path}, line {n}: field 'task_type' must be a string.")
        else:
            text, task = line.strip(), "general"
        if not text:
            raise ImportFormatError(f"{path}, line {n}: field 'prompt' is blank.")
        if text not in seen:
            seen.add(text)
            out.append(PromptRecord(text, task, n))
    if not out:
        raise ImportFormatError(f"{path}: no prompts.")
    return out


def item_seed(prompt: str, model: str, sample: int, base: int) -> int:
    return zlib.crc32(f"{base}:{model}:{sample}:{text_hash(prompt)}".encode()) & 0x7FFFFFFF


def stored_items(store: Store, prompts: Sequence[PromptRecord]) -> set[tuple[str, str, int]]:
    """``(prompt text hash, model, sample)`` of every generated response already stored."""
    hashes = {text_hash(p.text) for p in prompts}
    rows = store._tuples(
        "SELECT p.text_hash, json_extract(r.generation, '$.model'), json_extract(r.generation, '$.sample') "
        "FROM responses r JOIN prompts p ON p.id = r.prompt_id WHERE r.generation IS NOT NULL")
    return {(h, m, int(k)) for h, m, k in rows if h in hashes and k is not None}


def run_generate_job(store: Store, prompts: Sequence[PromptRecord], generators: Sequence[Generator], n: int = 2,
                     temperatures: Sequence[float] = (0.7,), max_new_tokens: int = 256, top_p: float = 1.0,
                     seed: int = 0, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Generate ``n`` responses per prompt from each generator; resumable (see the module).

    Returns a summary: ``items``, ``stored``, ``skipped_done``, ``empty`` (the model wrote
    nothing), ``duplicates`` (a text the prompt already had), ``failed`` items (their batch
    failed after its retries; a rerun tries them again) with the first ``error``, the rate,
    and each HTTP back-end's request / retry counts."""
    if n < 1:
        raise ConfigError(f"--n: must be at least 1; got {n}.")
    if not temperatures:
        raise ConfigError("--temperatures: give at least one.")
    names = [g.name for g in generators]
    if len(set(names)) != len(names):
        raise ConfigError(f"--model: a model is named twice ({', '.join(names)}).")
    for t in temperatures:
        Decoding(max_new_tokens, t, top_p).validate("--temperatures")
    done = stored_items(store, prompts)
    todo, skipped = [], 0
    for p in prompts:
        for g, generator in enumerate(generators):
            for k in range(n):
                if (text_hash(p.text), generator.name, k) in done:
                    skipped += 1
                    continue
                todo.append(_Item(p, g, k, float(temperatures[k % len(temperatures)]),
                                  item_seed(p.text, generator.name, k, seed)))
    counts: dict[str, Any] = {"prompts": len(prompts), "models": names, "items": len(todo) + skipped,
                              "stored": 0, "skipped_done": skipped, "empty": 0, "duplicates": 0, "failed": 0}
    start = time.perf_counter()
    finished = 0
    for g, generator in enumerate(generators):
        mine = [i for i in todo if i.generator == g]
        for temperature in sorted({i.temperature for i in mine}):
            group = [i for i in mine if i.temperature == temperature]
            decoding = Decoding(max_new_tokens, temperature, top_p)
            for b in range(0, len(group), max(1, generator.batch_size)):
                batch = group[b:b + max(1, generator.batch_size)]
                try:
                    texts = generator.chat([[{"role": "system", "content": SYSTEM_PROMPT},
                                             {"role": "user", "content": i.prompt.text}] for i in batch],
                                           decoding, [i.seed for i in batch])
                    _store_batch(store, generator, decoding, batch, texts, counts)
                except GenerationError as exc:
                    counts["failed"] += len(batch)
                    counts.setdefault("error", str(exc))
                finished += len(batch)
                if progress:
                    elapsed = time.perf_counter() - start
                    eta = elapsed / finished * (len(todo) - finished) if finished else 0.0
                    progress(f"generate: {finished}/{len(todo)} responses  {finished / elapsed:.2f}/s  "
                             f"ETA {eta:.0f}s  ({generator.name}, temperature {temperature:g})")
    elapsed = time.perf_counter() - start
    counts["seconds"] = round(elapsed, 3)
    counts["responses_per_second"] = round(finished / elapsed, 2) if elapsed else 0.0
    for generator in generators:
        if hasattr(generator, "stats"):
            counts.setdefault("http", {})[generator.name] = dict(generator.stats)
    return counts


def _store_batch(store: Store, generator: Generator, decoding: Decoding, batch: Sequence[_Item],
                 texts: Sequence[str], counts: dict[str, Any]) -> None:
    records = []
    for item, text in zip(batch, texts):
        if not text.strip():
            counts["empty"] += 1
            continue
        try:  # what comes back passes the import's text checks (size, valid Unicode) before it is stored
            check_text(f"generate:{generator.name}", item.sample, "response", text)
        except ImportFormatError as exc:
            counts["refused"] = counts.get("refused", 0) + 1
            counts.setdefault("refused_reason", str(exc))
            continue
        generation = {"model": generator.name, "backend": generator.backend, "decoding": decoding.as_dict(),
                      "sample": item.sample, "seed": item.seed}
        records.append({"prompt": item.prompt.text, "task_type": item.prompt.task_type,
                        "responses": [{"text": text, "model": generator.name, "generation": generation}]})
    if not records:
        return
    _, new = store.add_pool(records, source=f"generate:{generator.name}")  # one transaction
    counts["stored"] += new
    counts["duplicates"] += len(records) - new
