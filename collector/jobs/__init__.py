"""Work done off the request path: batch jobs that talk to a model (``generate_job``,
``rewrite_job``, ``judge``), simulated annotators (``simulate``), the trainer process
(``worker``) and the review of annotators' quality (``annotator_quality``). Each stores answers
and pairs through ``collector.serving`` like the annotator page does."""
