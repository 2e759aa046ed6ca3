"""Every caption of rules/report/ renders in the Snakemake report without a docutils system
message (a red error box in the page): rendered as Snakemake renders it (jinja2, then docutils'
HTML writer), with docutils' warnings raised as errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from docutils.core import publish_parts
from docutils.utils import SystemMessage
from jinja2 import Environment, StrictUndefined

from conftest import REPO

CAPTIONS = sorted((REPO / "rules" / "report").glob("*.rst"))


class Anything:
    """Whatever a caption asks of ``snakemake`` (params, config, wildcards): a value that prints,
    indexes, iterates, formats as a number and is true or false as constructed (both branches of every ``{% if %}``)."""

    def __init__(self, truth: bool):
        self.truth = truth

    def __getattr__(self, name):
        return self

    def __getitem__(self, key):
        return self

    def __iter__(self):
        return iter([self])

    def __bool__(self):
        return self.truth

    def __str__(self):
        return "value"

    def __float__(self):  # "%.4g"|format(...)
        return 0.5


@pytest.mark.parametrize("truth", [True, False])
@pytest.mark.parametrize("caption", CAPTIONS, ids=lambda p: p.name)
def test_a_caption_renders_without_a_system_message(caption: Path, truth: bool):
    env = Environment(trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)  # as snakemake.report
    text = env.from_string(caption.read_text()).render(snakemake=Anything(truth), categories={}, files={})
    try:
        html = publish_parts(text, writer_name="html",
                             settings_overrides={"halt_level": 2, "report_level": 2, "warning_stream": False})["body"]
    except SystemMessage as error:
        raise AssertionError(f"{caption.relative_to(REPO)} renders a docutils message: {error}") from None
    assert "system-message" not in html, caption
