"""Stored rewrite pairs as the ``counterfactual_pairs`` policy serves them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SOURCE = "rewriter"  # the `responses.source` of every stored rewrite


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


def rewrite_pairs(variants: list[dict[str, Any]]) -> list[RewritePair]:
    """Every complete rewrite pair among stored rewrite variants (``Store.variants(SOURCE)``)
    whose two texts differ."""
    by_id = {r["id"]: r for r in variants}
    pairs = []
    for row in variants:
        (attribute, entry), = row["edit_vector"].items()
        first = by_id.get(entry.get("source_response_id"))
        if entry.get("round") != 2 or first is None or first["text"] == row["text"]:
            continue
        pairs.append(RewritePair(row["prompt_id"], row["parent_response_id"], attribute, entry["editor"],
                                 first["id"], first["edit_vector"], row["id"], row["edit_vector"]))
    return pairs
