"""The Host check in front of every HTTP request and websocket of the app (DNS rebinding).

A page on ``evil.example`` whose name is made to resolve to 127.0.0.1 reaches a local server
with ``Host: evil.example`` and an ``Origin`` that matches it, so Streamlit's Origin check lets its
websocket through. The server therefore answers only requests whose Host names a host it was
started for (:func:`app.serving.allowed_hosts`); everything else gets 403 before Streamlit sees it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from app.serving import ANY_IP, ENV_ALLOWED_HOSTS, LOOPBACK_HOSTS

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
REFUSAL = b"This server does not answer for this host name (Host header); use the address it serves.\n"

log = logging.getLogger(__name__)


def host_name(header: str | None) -> str | None:
    """The host name of a Host header: lowercase, without port, IPv6 brackets or final dot;
    ``None`` when there is none or the header is malformed (user info, a path, a bad port)."""
    if not header or any(ch in header for ch in "/?#@\\ \t\r\n\x00"):
        return None
    try:
        parts = urlsplit(f"//{header}")
        name, _ = parts.hostname, parts.port  # .port validates the port
    except ValueError:
        return None
    name = (name or "").rstrip(".")
    return name or None


def is_allowed(header: str | None, allowed: Sequence[str]) -> bool:
    """Whether a request with this Host header is answered."""
    name = host_name(header)
    if name is None:
        return False
    if name in allowed:
        return True
    return ANY_IP in allowed and _is_ip(name)


def allowed_from_env(env: Mapping[str, str] | None = None) -> list[str]:
    """The allowed names ``ner app`` put in ``$NER_APP_ALLOWED_HOSTS``; loopback names only
    when it is unset (the server was started some other way)."""
    value = (os.environ if env is None else env).get(ENV_ALLOWED_HOSTS, "")
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    return names or list(LOOPBACK_HOSTS)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostCheck:
    """ASGI middleware: 403 for an HTTP request or websocket whose Host is not allowed."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], allowed: Sequence[str]):
        self.app = app
        self.allowed = list(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        header = _header(scope, b"host")
        if is_allowed(header, self.allowed):
            return await self.app(scope, receive, send)
        log.warning("refused a %s request for Host %r (allowed: %s)", scope["type"], header, self.allowed)
        if scope["type"] == "websocket":  # closed before the handshake: the server answers 403
            await send({"type": "websocket.close", "code": 1008})
            return None
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(REFUSAL))]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": REFUSAL})
        return None


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name``, decoded as Latin-1 (HTTP's own header encoding)."""
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None
