"""Benchmarks: ``causal`` (does interventional data make reward models robust?) and ``speed``
(``make bench``: serving, embeddings, training, dashboard, the annotator page in browsers)."""

from collector.app import REPOSITORY

# real human preferences for benchmarks and tests; the product never depends on them
HH_RLHF_SAMPLE = REPOSITORY.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-sample.jsonl.gz"
