"""Reward models (embeddings, model family, online training) arrive with the reward-model issue."""
