"""The researcher dashboard: the data it reads and pure ``build_*_figure(df) -> Figure`` functions.

No Streamlit here: ``loading``, ``summaries`` (the numbers each panel shows) and ``figures``
(``build_*_figure``), re-exported here. ``load_pairs`` reads one row per served pair with the
columns (and names) of ``collector.io.frames.pairs_frame`` that the panels use, but without texts or edit-vector
JSON: ``pairs_frame`` takes about 8 s on 100,000 labels, mostly carrying texts the dashboard
never shows. Its queries live in ``collector/store/reads.py`` and run on a read-only
SQLite connection of their own (WAL readers never block the writer), so a dashboard refresh
never holds the ``Store`` lock that serving and labelling take.

Panels: progress (labels over time by group and annotator, median latency, skip and both-bad
rates), effects (``acquisition.effects.amce`` overall, by annotator group, by prompt type),
balance between arms (``acquisition.balance.arm_balance``), overlap (labelled counts over
attribute combinations x prompt types x groups, empty cells shown), model checkpoints
(``metrics.json`` of each ``v<N>``) and agreement (Krippendorff's alpha and pairwise agreement).
"""

from collector.app.panels.figures import (
    build_agreement_figure,
    build_balance_figure,
    build_effects_figure,
    build_model_figure,
    build_overlap_figure,
    build_progress_figure,
)
from collector.app.panels.loading import (
    ATTRIBUTES,
    CHOICE,
    EMPTY_COLOUR,
    REGULAR,
    SCOPES,
    STATUS,
    data_version,
    design_attributes,
    load_checkpoints,
    load_flags,
    load_pairs,
    randomised,
    regular_labels,
    with_flags,
)
from collector.app.panels.summaries import (
    agreement_summary,
    balance_table,
    effects_table,
    family_summary,
    overlap_counts,
    progress_summary,
)

__all__ = [
    "ATTRIBUTES",
    "CHOICE",
    "EMPTY_COLOUR",
    "REGULAR",
    "SCOPES",
    "STATUS",
    "agreement_summary",
    "balance_table",
    "build_agreement_figure",
    "build_balance_figure",
    "build_effects_figure",
    "build_model_figure",
    "build_overlap_figure",
    "build_progress_figure",
    "data_version",
    "design_attributes",
    "effects_table",
    "family_summary",
    "load_checkpoints",
    "load_flags",
    "load_pairs",
    "overlap_counts",
    "progress_summary",
    "randomised",
    "regular_labels",
    "with_flags",
]
