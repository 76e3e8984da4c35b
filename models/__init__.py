"""Models: sentence embeddings (``embeddings``), the reward-model family (``reward``), online
training (``online``) and the checkpoint folder it publishes to (``checkpoints``)."""
