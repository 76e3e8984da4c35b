"""The researcher dashboard: the data it reads and pure ``build_*_figure(df) -> Figure`` functions.

No Streamlit here: ``data`` (loading), ``tables`` (the numbers each panel shows) and
``figures`` (``build_*_figure``), re-exported here. ``load_pairs`` reads one row per served pair with the columns (and names)
of ``collector.io.export.pairs_frame`` that the panels use, but without texts or edit-vector
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

from collector.app.panels.loading import (
    ATTRIBUTES,
    REGULAR,
    EMPTY_COLOUR,
    SCOPES,
    STATUS,
    CHOICE,
    design_attributes,
    load_pairs,
    load_flags,
    with_flags,
    randomised,
    regular_labels,
    data_version,
    load_checkpoints,
)
from collector.app.panels.summaries import (
    progress_summary,
    effects_table,
    balance_table,
    overlap_counts,
    krippendorff_alpha_nominal,
    pairwise_agreement,
    agreement_items,
    agreement_table,
)
from collector.app.panels.figures import (
    build_progress_figure,
    build_effects_figure,
    build_balance_figure,
    build_overlap_figure,
    build_model_figure,
    build_agreement_figure,
)
