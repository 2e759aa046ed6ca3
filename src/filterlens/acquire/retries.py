"""Attempts with exponential back-off, for downloads: an error that another attempt can fix is
retried; one that it cannot (a host that does not resolve or connect, :class:`NetworkUnreachable`;
any :class:`PermanentError` the caller names) is raised at once with the fix."""

from __future__ import annotations

import errno
import logging
import socket
import time
from typing import Callable, TypeVar

from filterlens.acquire.errors import AcquisitionError, NetworkUnreachable

LOG = logging.getLogger(__name__)
T = TypeVar("T")

# errno values of a connection that cannot be made at all (no route, no interface, no network)
UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EADDRNOTAVAIL}


def unreachable_cause(error: BaseException) -> OSError | None:
    """The error in ``error``'s chain that says the host cannot be resolved or connected to, or None.

    The chain is followed through ``__cause__``, ``__context__`` and urllib3's ``reason`` (requests
    wraps urllib3's MaxRetryError, which wraps NameResolutionError, which wraps socket.gaierror).
    A name that does not resolve (socket.gaierror), a refused connection and an unreachable network
    or host cannot succeed on another attempt; a connection reset or timed out mid-way can, and is
    not named here.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        link = pending.pop()
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        if isinstance(link, (socket.gaierror, ConnectionRefusedError)) or (
                isinstance(link, OSError) and link.errno in UNREACHABLE_ERRNOS):
            return link
        reason = getattr(link, "reason", None)
        pending += [link.__cause__, link.__context__, reason if isinstance(reason, BaseException) else None]
    return None


def with_retries(action: Callable[[int], T], *, attempts: int, backoff_s: float, max_backoff_s: float = 600.0,
                 sleep: Callable[[float], None] = time.sleep, give_up_on: tuple[type[BaseException], ...] = (),
                 what: str = "download", fix: str = "", log: logging.Logger = LOG) -> T:
    """Call ``action(attempt)`` until it returns, at most ``attempts`` times.

    Between failures it sleeps ``backoff_s * 2**i`` seconds (at most ``max_backoff_s``).
    Exceptions of ``give_up_on`` (and KeyboardInterrupt) are raised at once. An error whose chain
    says the host cannot be resolved or connected to (:func:`unreachable_cause`) raises
    :class:`NetworkUnreachable` at once, with the ``fix``. After the last failure,
    :class:`AcquisitionError` lists every attempt's error and the ``fix``.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    errors = []
    for attempt in range(1, attempts + 1):
        try:
            return action(attempt)
        except give_up_on:
            raise
        except Exception as error:  # noqa: BLE001 - network code raises anything
            if cause := unreachable_cause(error):
                raise NetworkUnreachable(
                    f"{what}: the download cannot reach its server ({type(cause).__name__}: {cause}); this machine "
                    "has no network, or none to that host, and another attempt would fail the same way. Stage the "
                    "files instead (`filterlens stage` lists each one and where it goes; docs/runs.md)."
                    + (f"\n{fix}" if fix else "")) from error
            errors.append(f"attempt {attempt}: {type(error).__name__}: {error}")
            log.warning("%s failed (attempt %d of %d): %s", what, attempt, attempts, error)
            if attempt < attempts:
                delay = min(max_backoff_s, backoff_s * 2 ** (attempt - 1))
                log.info("waiting %.1f s before the next attempt", delay)
                sleep(delay)
    raise AcquisitionError(f"{what} failed {attempts} time(s):\n  " + "\n  ".join(errors) + (f"\n{fix}" if fix else ""))
