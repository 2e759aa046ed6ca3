"""Measures that run a model (torch): the input sizes of its convolutions, their spectra as operators, and the
perturbation ratios of its layers under PGD and random noise (docs/method.md §7)."""
