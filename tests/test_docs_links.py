"""Every link in the README, in docs/ and in a generated dataset card leads to a file that exists
and, where it names an anchor, to a heading of that file (GitHub's anchors)."""

import re
from pathlib import Path

import pytest

from collector.app import REPOSITORY

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def _without_code(text: str) -> str:
    """The text with fenced code blocks and inline code taken out (links in code are examples)."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            out.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(out)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces
    to hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    out = set()
    for line in _without_code(path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def broken_links(text: str, base: Path) -> list[str]:
    bad = []
    body = _without_code(text)
    for target in LINK.findall(body) + IMAGE.findall(body):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http(s), mailto: not followed here
            continue
        path_part, _, anchor = target.partition("#")
        path = (base / path_part).resolve() if path_part else None
        if path is not None and not path.exists():
            bad.append(f"{target}: no such file")
            continue
        if anchor:
            md = path if path is not None else None
            if md is None or md.suffix != ".md":
                continue
            if anchor not in anchors(md):
                bad.append(f"{target}: no heading with anchor #{anchor}")
    return bad


DOCS = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").rglob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPOSITORY)))
def test_every_link_in_the_docs_resolves(doc):
    text = doc.read_text(encoding="utf-8")
    bad = broken_links(text, doc.parent)
    # a link to an anchor of the same file
    bad += [f"#{a}: no such heading" for a in re.findall(r"\]\(#([^)]+)\)", _without_code(text))
            if a not in anchors(doc)]
    assert not bad, f"{doc.relative_to(REPOSITORY)}: " + "; ".join(bad)


def test_every_link_in_a_generated_card_resolves(tmp_path):
    from collector.io.card import build_card
    from collector.io.frames import pairs_frame
    from collector.jobs.simulate import simulate
    from collector.store import Store
    from collector.store.create import init_db

    init_db(tmp_path / "c.db", demo=True)
    store = Store(tmp_path / "c.db")
    simulate(store, labels=20, annotators=2, seed=0)
    card = build_card(store, pairs_frame(store), fmt="trl")
    store.close()
    assert "](docs/data.md#export-formats)" in card
    assert not broken_links(card, REPOSITORY)  # the card's links point into the repository


def test_the_link_checker_catches_a_missing_anchor_and_file(tmp_path):
    (tmp_path / "a.md").write_text("# Export formats\n\ntext\n")
    assert not broken_links("[x](a.md#export-formats)", tmp_path)
    assert broken_links("[x](a.md#import-formats)", tmp_path) == ["a.md#import-formats: no heading with anchor #import-formats"]
    assert broken_links("[x](b.md)", tmp_path) == ["b.md: no such file"]


def test_the_architecture_page_is_short_and_names_every_room():
    text = (REPOSITORY / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 70
    rooms = [p.name for p in (REPOSITORY / "collector").iterdir() if (p / "__init__.py").exists()]
    assert {"jobs", "serving", "io", "store", "app", "benchmarks"} <= set(rooms)
    for room in rooms:
        assert f"  {room}/" in text, room
    for module in ("training.py", "evaluation.py", "scoring.py", "records.py"):
        assert module in text, module
