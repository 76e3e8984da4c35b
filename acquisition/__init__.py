"""Acquisition: attribute editors, intervention policies and their configs."""

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

__all__ = [
    "EDITORS", "Editor", "apply_edit_vector", "get_editor", "register_editor",
    "POLICIES", "AnnotatorContext", "Policy", "Proposal", "ProposedSide", "build_policy",
    "load_policy_file", "parse_policy_config", "register_policy",
]
