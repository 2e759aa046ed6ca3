"""Figures and tables: data shaping, formatting, plotting style, provenance."""
