"""The ``direct`` transport: POST /chat/completions over :mod:`glan_dataset.llm.http1`, without the
SDK's request layers.

Why it exists: the openai SDK's request path (options model, URL and header building, httpx2
request/response objects over the aiohttp adapter) made the engine cost 1.6 ms of CPU per call on a
2-core machine; over this transport and http1's connection pool it costs ~0.19 ms, beside ~0.22 ms
for a bare aiohttp client (``bench/engine.py``, 256 in flight, same run). At 20M calls that is hours
of CPU, and on a shared machine it decides whether the endpoint stays saturated. It sends the
same JSON body with the same auth header, and reports the same faults as the SDK path, so the
engine's retries, limits and error messages are unchanged. The SDK stays in use for everything else
(files, batches); ``EngineConfig(transport="aiohttp")`` sends chat calls through it too.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from glan_dataset.llm.http1 import ConnectFault, ConnectionFault, ConnectionPool, TimeoutFault

__all__ = ["ConnectFault", "ConnectionFault", "DirectTransport", "HTTPStatusFault", "TimeoutFault", "proxy_for"]


class HTTPStatusFault(Exception):
    """A non-2xx answer: status, headers (lower-case names) and the API's error message."""

    def __init__(self, status: int, headers: Mapping[str, str], message: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = headers
        self.message = message


class DirectTransport:
    """Chat calls over one keep-alive connection pool. Create it anywhere; use it inside one event loop."""

    def __init__(self, base_url: str, api_key: str, timeout: float) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._base_path = urlsplit(base_url.rstrip("/")).path
        self._chat_path = self._base_path + "/chat/completions"
        headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "User-Agent": "glan-dataset",
        }
        # the headers the SDK adds from the environment, so both paths reach the same account
        for variable, header in (("OPENAI_ORG_ID", "OpenAI-Organization"), ("OPENAI_PROJECT_ID", "OpenAI-Project")):
            if os.environ.get(variable):
                headers[header] = os.environ[variable]
        # total: a server that trickles its body a byte at a time is cut at the deadline, not only
        # one that stops sending
        self._timeout = timeout
        self.proxy = proxy_for(self.url)  # resolved once: aiohttp's trust_env scanned it on every request
        self._pool = ConnectionPool(self.url, headers, proxy=self.proxy)

    def __repr__(self) -> str:  # never show the header with the key
        return f"DirectTransport(url={self.url!r})"

    async def post(self, payload: bytes) -> tuple[bytes, Mapping[str, str]]:
        """(body, headers) of a 2xx answer; raises HTTPStatusFault or one of http1's faults otherwise."""
        response = await self._pool.request("POST", self._chat_path, payload, timeout=self._timeout)
        if response.status >= 300:
            raise HTTPStatusFault(response.status, response.headers, _error_message(response.body))
        return response.body, response.headers

    async def get_json(self, path: str) -> tuple[int, Any]:
        """(status, decoded body or None) of ``GET base_url + path`` (preflight's /models)."""
        response = await self._pool.request("GET", self._base_path + path, timeout=self._timeout)
        try:
            return response.status, json.loads(response.body)
        except ValueError:
            return response.status, None

    async def aclose(self) -> None:
        await self._pool.aclose()


def _error_message(body: bytes) -> str:
    try:
        data: Any = json.loads(body)
        message = data.get("error", data).get("message") if isinstance(data, dict) else None
        return str(message or body[:300].decode(errors="replace"))[:300]
    except (ValueError, AttributeError):
        return body[:300].decode(errors="replace")


def proxy_for(url: str) -> str | None:
    """The proxy for ``url`` from the environment (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY), as
    urllib, aiohttp and curl read it, resolved once per transport."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not proxies or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxies.get(parts.scheme) or proxies.get("all") or None
