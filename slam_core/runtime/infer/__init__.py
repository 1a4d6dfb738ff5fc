"""Inference and scoring: decode a manifest into hypotheses jsonl, score them per task."""
