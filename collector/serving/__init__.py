"""Serving: the next pair under the active policy, labels, quality control, simulated
annotators, the trainer process and the rewrite job."""
