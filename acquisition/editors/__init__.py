"""Attribute editors: seeded, deterministic ``text -> text`` switches with a read-back measure.

Each editor changes one stylistic attribute that reward models are known to learn as a
spurious feature (length, lists, bold, emoji, sycophantic openers, hedging, ...) and keeps
the content: every word of the original survives, in order, and each works both ways on natural
texts (detect, add, remove) where it ``applies`` (``tests/acquisition/test_editors.py`` checks
this for every registered style editor); the quality controls in ``controls`` (and the
fabricated ``citations``) change real quality on purpose. ``measure`` reads the attribute back so each
edited copy can store a manipulation check.

References: Singhal et al., *A Long Way to Go: Investigating Length Correlations in RLHF*
(2023); Zhang et al., *From Lists to Emojis: How Format Bias Affects Model Alignment* (2024);
Sharma et al., *Towards Understanding Sycophancy in Language Models* (2023).
"""

from acquisition.editors import controls, phrasing, style  # noqa: E402,F401  (registers the editors)
from acquisition.editors.editor import (
    DEFAULT_ATTRIBUTES,
    EDITORS,
    Editor,
    apply_edit_vector,
    edit_and_receive,
    edit_seed,
    get_editor,
    quality_neutral,
    realised_flag,
    register_editor,
    treatment_received,
    with_treatment,
    word_count,
)

__all__ = ["DEFAULT_ATTRIBUTES", "EDITORS", "Editor", "apply_edit_vector", "edit_and_receive", "edit_seed", "get_editor",
           "quality_neutral", "realised_flag", "register_editor", "treatment_received", "with_treatment",
           "word_count"]
