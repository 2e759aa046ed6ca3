"""Model architectures: RobustBench and timm builders, their import fixes, the conv graph, checks of a sheet's models."""
