"""Serving: the request path. The next pair under the active policy (``service.Collector``),
labels, quality-control draws, the study and QC settings, and the pool snapshots the policies
read. Batch jobs and the trainer process live in ``collector.jobs``."""
