"""Whether this machine reaches a download's servers, answered within a bounded time.

Each host is tried in a thread of its own (a name lookup takes no timeout), a TCP connection to
port 443, or to the HTTPS proxy that the environment names (``https_proxy``, as requests uses it),
and whatever has not answered by the deadline is unreachable. Nothing is sent.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.parse
import urllib.request
from typing import Iterable

DEFAULT_TIMEOUT_S = 1.5


def _proxy() -> tuple[str, int] | None:
    """The HTTPS proxy of the environment as (host, port), or None."""
    url = urllib.request.getproxies().get("https")
    if not url:
        return None
    parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    return (parsed.hostname, parsed.port or 8080) if parsed.hostname else None


def unreachable_hosts(hosts: Iterable[str], timeout_s: float = DEFAULT_TIMEOUT_S, port: int = 443) -> dict[str, str]:
    """Why each host of ``hosts`` that this machine cannot connect to on ``port`` is not reached (host -> reason).

    Returns within about ``timeout_s`` seconds, whatever the name lookups do. A host behind the
    environment's HTTPS proxy counts as reached when the proxy accepts a connection (the proxy bypass
    list is not consulted).
    """
    hosts = list(dict.fromkeys(hosts))
    proxy = _proxy()
    reasons: dict[str, str] = {}

    def attempt(host: str) -> None:
        target = proxy or (host, port)
        try:
            with socket.create_connection(target, timeout=timeout_s):
                pass
        except OSError as error:
            via = f" through the proxy {target[0]}:{target[1]}" if proxy else ""
            reasons[host] = f"{type(error).__name__}: {error}{via}"
        else:
            reasons[host] = ""

    threads = [threading.Thread(target=attempt, args=(host,), daemon=True) for host in hosts]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return {host: reasons.get(host) or f"no answer within {timeout_s:g} s" for host in hosts if reasons.get(host) != ""}
