"""Manipulation checks for rewrites, by the attribute's rule-based editor."""

from __future__ import annotations

from acquisition.editors import EDITORS, Editor


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
