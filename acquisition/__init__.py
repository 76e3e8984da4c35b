"""Acquisition: attribute editors, intervention policies and their configs."""

from pathlib import Path

from acquisition.editors import EDITORS, Editor, apply_edit_vector, get_editor, register_editor
from acquisition.policies import (
    POLICIES,
    AnnotatorContext,
    Policy,
    Proposal,
    ProposedSide,
    build_policy,
    load_policy_file,
    parse_policy_config,
    register_policy,
)

EXAMPLES = Path(__file__).resolve().parent / "examples"  # policy and rewriter files to start from

__all__ = [
    "EXAMPLES",
    "EDITORS", "Editor", "apply_edit_vector", "get_editor", "register_editor",
    "POLICIES", "AnnotatorContext", "Policy", "Proposal", "ProposedSide", "build_policy",
    "load_policy_file", "parse_policy_config", "register_policy",
]
