"""From checkpoints and databases to filter stores: 3x3 weights with their depths, the chunked Zarr store."""
