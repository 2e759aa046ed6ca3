"""Analyses across models from their per-model summaries: PCA bases, KL, layer quality, statistics, findings."""
