"""The ``direct`` transport: POST /chat/completions with aiohttp, without the SDK's request layers.

Why it exists: the openai SDK's request path (options model, URL and header building, httpx2
request/response objects over the aiohttp adapter) made the engine cost 1.6 ms of CPU per call on a
2-core machine; with this transport it costs 0.67 ms, beside 0.43 ms for a bare aiohttp client
(``bench/engine.py --transport all``, one run). At 20M calls that is hours of CPU, and on a shared
machine it decides whether the endpoint stays saturated. It sends the
same JSON body with the same auth header, and reports the same faults as the SDK path, so the
engine's retries, limits and error messages are unchanged. The SDK stays in use for everything else
(files, batches); ``EngineConfig(transport="aiohttp")`` sends chat calls through it too.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDictProxy


class HTTPStatusFault(Exception):
    """A non-2xx answer: status, headers and the API's error message."""

    def __init__(self, status: int, headers: CIMultiDictProxy[str], message: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = headers
        self.message = message


class ConnectFault(Exception):
    """No connection could be opened (refused, DNS, connect timeout)."""


class TimeoutFault(Exception):
    """The answer did not come within the timeout."""


class ConnectionFault(Exception):
    """The connection broke during the call (reset, truncated body)."""


class DirectTransport:
    """One aiohttp session for all chat calls. Create and use it inside the event loop."""

    def __init__(self, base_url: str, api_key: str, timeout: float) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        # the headers the SDK adds from the environment, so both paths reach the same account
        for variable, header in (("OPENAI_ORG_ID", "OpenAI-Organization"), ("OPENAI_PROJECT_ID", "OpenAI-Project")):
            if os.environ.get(variable):
                self._headers[header] = os.environ[variable]
        # total: a server that trickles its body a byte at a time is cut at the deadline, not only
        # one that stops sending
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.proxy = proxy_for(self.url)

    def __repr__(self) -> str:  # never show the header with the key
        return f"DirectTransport(url={self.url!r})"

    async def post(self, payload: bytes) -> tuple[bytes, CIMultiDictProxy[str]]:
        """(body, headers) of a 2xx answer; raises one of the faults above otherwise."""
        session = self._session
        if session is None:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
            # trust_env=True would scan the proxy environment and read ~/.netrc (in a thread) on every
            # request: ~half the engine's CPU at a thousand calls a second. The proxy is resolved once.
            session = self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        try:
            async with session.post(self.url, data=payload, headers=self._headers, proxy=self.proxy) as response:
                body = await response.read()
                if response.status >= 300:
                    raise HTTPStatusFault(response.status, response.headers, _error_message(body))
                return body, response.headers
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            raise ConnectFault(str(error)) from None
        except TimeoutError:
            raise TimeoutFault() from None
        except aiohttp.ClientError as error:  # disconnects, payload errors, resets
            raise ConnectionFault(f"{type(error).__name__}: {error}"[:200]) from None

    async def get_json(self, path: str) -> tuple[int, Any]:
        """(status, decoded body or None) of ``GET base_url + path`` (preflight's /models)."""
        url = self.url.removesuffix("/chat/completions") + path
        try:
            async with aiohttp.ClientSession(timeout=self._timeout) as session:
                async with session.get(url, headers=self._headers, proxy=self.proxy) as response:
                    body = await response.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            raise ConnectFault(str(error)) from None
        except TimeoutError:
            raise TimeoutFault() from None
        except aiohttp.ClientError as error:
            raise ConnectionFault(f"{type(error).__name__}: {error}"[:200]) from None
        try:
            return response.status, json.loads(body)
        except ValueError:
            return response.status, None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _error_message(body: bytes) -> str:
    try:
        data: Any = json.loads(body)
        message = data.get("error", data).get("message") if isinstance(data, dict) else None
        return str(message or body[:300].decode(errors="replace"))[:300]
    except (ValueError, AttributeError):
        return body[:300].decode(errors="replace")


def proxy_for(url: str) -> str | None:
    """The proxy for ``url`` from the environment (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY), as
    aiohttp's trust_env reads it, resolved once per session."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not proxies or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxies.get(parts.scheme) or proxies.get("all") or None
