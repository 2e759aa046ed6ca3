"""The definitions of docs/method.md on in-memory arrays: filters, PCA, orthogonality, distributions, depth groups."""
