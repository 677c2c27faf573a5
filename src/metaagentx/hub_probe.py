"""Whether the Hugging Face Hub can be used right now, asked once and quickly.

`huggingface_hub` retries an unreachable Hub for ~25 s per request before it gives up; a
model or dataset that is not cached would keep a user waiting most of a minute for an error
about the network. One TCP connection with a short timeout (through the proxy, if one is set)
answers the same question in at most `CONNECT_TIMEOUT_S`, and loaders then go offline at once.
"""

from __future__ import annotations

import socket
import urllib.request
from urllib.parse import urlparse

CONNECT_TIMEOUT_S = 3.0


def hub_unreachable(offline: bool = False) -> str | None:
    """Why the Hub cannot be used now (HF_HUB_OFFLINE, `offline`, no connection), or None."""
    from huggingface_hub import constants

    if offline or constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    endpoint = urlparse(constants.ENDPOINT)
    host = endpoint.hostname or ""
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(endpoint.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        via = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = via.hostname or "", via.port or 80
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        return f"no connection to {host}:{port}: {exc}"
    return None
