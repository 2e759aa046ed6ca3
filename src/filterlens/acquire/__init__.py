"""Getting checkpoints: downloads with their checks, the checkpoint contract, failed-download diagnosis."""
