"""The definitions of docs/method.md on in-memory arrays: filters, PCA, orthogonality, distributions, depth groups,
the filter measures, and the registry of every per-model measure (filterlens.method.measures)."""
