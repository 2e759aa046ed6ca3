"""filterlens: the library behind the workflow that reproduces "Adversarial Robustness
through the Lens of Convolutional Filters" (Gavrikov & Keuper, CVPR-W 2022).

One package per stage of the workflow, in the order the data flows (docs/design.md, "Library
layout"): ``method`` holds the definitions on arrays, the stages after it read and write the
workflow's files (checkpoints, filter stores, summaries, tables, figures), and the rule scripts
of ``workflow_scripts/`` call them. From Python: :func:`analyze` (one model, in memory),
:func:`compare` (two models), :func:`place` (one model against a reference bundle) and
:func:`load_results` (a run's tables), from :mod:`filterlens.api`, imported on first use so that
``import filterlens`` stays cheap.
"""

__version__ = "0.1.0"
__all__ = ["analyze", "compare", "place", "load_results", "Results", "Comparison"]


def __getattr__(name: str):
    if name in __all__:
        from filterlens import api

        return getattr(api, name)
    raise AttributeError(f"module 'filterlens' has no attribute {name!r}")
