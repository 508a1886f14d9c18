"""Replies and the LLM work that follows them: generation, summary folds, capsule writing."""
