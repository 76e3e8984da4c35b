"""Acquisition policies, one module each, registered by name in ``POLICIES``.

``policy`` holds the contract (``Policy.propose(annotator, rng) -> Proposal`` with an exact
propensity, validated in one place), the registry and the TOML loaders; importing this
package registers every built-in policy.
"""

from acquisition.policies.active import Active, ActiveConfig
from acquisition.policies.assignment import AssignmentRandomisation, AssignmentRandomisationConfig
from acquisition.policies.counterfactual import CounterfactualPairs, CounterfactualPairsConfig
from acquisition.policies.mixture import Mixture, MixtureComponent, MixtureConfig
from acquisition.policies.observational import Observational, ObservationalConfig
from acquisition.policies.overlap import OverlapTargeting, OverlapTargetingConfig
from acquisition.policies.policy import (
    INPUTS,
    POLICIES,
    AnnotatorContext,
    InvalidProposal,
    Policy,
    Proposal,
    ProposedSide,
    arm_name,
    build_policy,
    coin_flip_probability,
    design_request,
    load_policy_file,
    on_set,
    parse_policy_config,
    parse_policy_document,
    policy_needs,
    register_policy,
    validate_proposal,
)
from acquisition.policies.randomised import RandomisedAttributes, RandomisedAttributesConfig

__all__ = [
    "INPUTS", "POLICIES", "AnnotatorContext", "InvalidProposal", "Policy", "Proposal", "ProposedSide", "arm_name",
    "build_policy", "coin_flip_probability", "design_request", "load_policy_file", "parse_policy_config",
    "on_set", "parse_policy_document", "policy_needs", "register_policy", "validate_proposal",
    "Observational", "ObservationalConfig", "RandomisedAttributes", "RandomisedAttributesConfig",
    "CounterfactualPairs", "CounterfactualPairsConfig", "Mixture", "MixtureComponent", "MixtureConfig",
    "AssignmentRandomisation", "AssignmentRandomisationConfig", "ActiveConfig", "Active",
    "OverlapTargeting", "OverlapTargetingConfig",
]
