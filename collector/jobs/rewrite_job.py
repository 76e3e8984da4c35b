"""The rewrite batch job (``python -m collector rewrite``): pre-generate rewrite /
rewrite-of-rewrite pairs with a local LM and store them as variants, resumably."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from acquisition.core.errors import ConfigError
from acquisition.rewriter import (
    SOURCE,
    RewriterConfig,
    base_state,
    rewrite_check,
)
from collector.io.importers import text_problem
from collector.store import Store


class Rewriter(Protocol):
    """``LLMRewriter`` (a local model) or ``models.generation.GeneratorRewriter`` (any back-end)."""

    config: RewriterConfig
    editor: str

    def prompt(self, instruction: str, request: str, response: str) -> Any: ...
    def fits(self, prompt: Any) -> bool: ...
    def generate(self, prompts: Sequence[Any], seed: int) -> list[str]: ...


@dataclass(frozen=True)
class _Item:
    prompt_id: int
    base_response_id: int
    attribute: str
    request: str
    text: str


def _edit_entry(rewriter: Rewriter, attribute: str, on: bool, seed: int, instruction: str,
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


def run_rewrite_job(store: Store, rewriter: Rewriter, attributes: Sequence[str] | None = None,
                    limit: int | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Pre-generate rewrite / rewrite-of-rewrite pairs for every base response and attribute.

    Resumable: pairs this rewriter already stored are skipped. Each batch is generated in full
    (every r1, then every r2) and stored in one transaction, so an interrupted run leaves only
    whole batches behind.

    Args:
        store: the database.
        rewriter: the loaded model, or ``GeneratorRewriter`` over a served one (``--endpoint``).
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
    counts: dict[str, Any] = {"stored": 0, "skipped_done": skipped_done, "too_long": 0, "empty": 0, "generated_texts": 0}
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


def _rewrite_batch(store: Store, rewriter: Rewriter, batch: list[_Item], counts: dict[str, Any]) -> None:
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
    counts["empty"] += sum(1 for k in keep if not r1[k])
    r1 = {k: text for k, text in r1.items() if _acceptable(rewriter, batch[k], text, counts)}
    second_instr = [_direction(config, i.attribute, not t) for i, t in zip(batch, targets)]
    second_prompts = {k: rewriter.prompt(second_instr[k], batch[k].request, r1[k]) for k in r1 if r1[k]}
    fitting = [k for k in second_prompts if rewriter.fits(second_prompts[k])]
    counts["too_long"] += len(second_prompts) - len(fitting)
    r2 = dict(zip(fitting, rewriter.generate([second_prompts[k] for k in fitting], seed + 1))) if fitting else {}
    counts["generated_texts"] += len(fitting)
    counts["empty"] += sum(1 for k in fitting if not r2[k])
    r2 = {k: text for k, text in r2.items() if _acceptable(rewriter, batch[k], text, counts)}
    whole = [k for k in fitting if r2.get(k)]
    if not whole:
        return  # nothing to store: the rewrite version stays
    with store.transaction():
        for k in whole:
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


def _acceptable(rewriter: Rewriter, item: _Item, text: str, counts: dict[str, Any]) -> bool:
    """What comes back passes the import's text checks (size, valid Unicode) before it is stored;
    a refused rewrite is counted, with the first reason, and its pair is not stored."""
    if not text:
        return True  # counted as empty
    if (problem := text_problem(text)) is not None:
        counts["refused"] = counts.get("refused", 0) + 1
        counts.setdefault("refused_reason", f"the {item.attribute} rewrite of response {item.base_response_id}: "
                                            f"{problem}")
        return False
    return True


def _direction(config: RewriterConfig, attribute: str, on: bool) -> str:
    instruction = config.instruction(attribute)
    return instruction.add if on else instruction.remove
