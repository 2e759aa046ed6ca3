"""The errors of acquiring a model: each message names the files and the fix."""

from __future__ import annotations


class AcquisitionError(RuntimeError):
    """A model could not be acquired; the message names the files and the fix."""


class PermanentError(AcquisitionError):
    """A failure that another attempt cannot fix (not retried)."""


class NetworkUnreachable(PermanentError):
    """A download could not resolve its host or connect to it: this machine has no network, or not
    to that host (not retried, :func:`filterlens.acquire.retries.unreachable_cause`)."""
