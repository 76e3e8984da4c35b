"""Optional LLM rewriter: counterfactual copies of responses written by a local causal LM.

Rule-based editors (``acquisition/editors/``) switch an attribute in microseconds, at serve
time. An LLM rewrite takes seconds, so it never runs on the request path: the batch job
(``collector.serving.service.rewrite_job``) pre-generates rewrites and stores them as variants of their
base response, and ``counterfactual_pairs`` with ``source = "rewrites"`` serves the stored rows.

Rewrite-of-rewrite, after RATE (Reber et al., *RATE: Causal Explainability of Reward Models
with Imperfect Counterfactuals*, 2024): for a base response ``x`` and attribute ``a``,
``r1 = rewrite(x, a set to the opposite of x)`` and ``r2 = rewrite(r1, a set back)``. The pair
``r1`` vs ``r2`` differs in ``a`` while both sides carry the rewriter's own artefacts (tone,
paraphrase, length drift), which comparing ``x`` with ``r1`` would confound with ``a``.

Any local causal LM directory works (``AutoModelForCausalLM`` + ``AutoTokenizer``, loaded with
``local_files_only=True`` and ``HF_HUB_OFFLINE=1``: nothing is downloaded).
"""


from acquisition.rewriter.checks import base_state, rewrite_check
from acquisition.rewriter.instructions import (
    DEFAULT_INSTRUCTIONS,
    AttributeInstruction,
    RewriterConfig,
    load_rewriter_config,
)
from acquisition.rewriter.llm import LLMRewriter, check_model_dir
from acquisition.rewriter.rewrite_pairs import SOURCE, RewritePair, rewrite_pairs

__all__ = [
    "DEFAULT_INSTRUCTIONS", "SOURCE", "AttributeInstruction", "LLMRewriter", "RewritePair", "RewriterConfig",
    "base_state", "check_model_dir", "load_rewriter_config", "rewrite_check", "rewrite_pairs",
]
