"""A small HTTP/1.1 client for the chat-completions hot path: keep-alive connections over asyncio
protocols, answers parsed by httptools (llhttp, the parser of Node.js and uvicorn).

Why it is hand-written: at a thousand calls a second the client's CPU decides whether the endpoint
stays busy. Posting the same bodies to the same loopback server (``bench/engine.py``, 10,000 calls,
256 in flight, 2-core VM), the well-kept asyncio clients all cost 0.33-0.43 ms of CPU per call:
aiohttp 0.33-0.36, rnet 0.37, curl_cffi 0.42, aiosonic 0.43. A protocol over httptools costs 0.17,
because a call is one ``transport.write`` of prebuilt header bytes and one parser feed, with no
request, response, stream or multidict objects. The parsing stays in a library; what is ours is
the connection pool and the request framing.

What it does: http and https (the system trust store; ``SSL_CERT_FILE`` as OpenSSL reads it),
http and https proxies (an absolute-form request through the proxy for http, a CONNECT tunnel for
https, credentials from the proxy URL), keep-alive with an idle limit and one transparent retry when a
reused connection turns out to be closed before any byte of the answer, chunked, sized and
close-delimited bodies, gzip and deflate, one total deadline per request (a body trickled a byte a
second is cut at it). What it leaves out, because the engine needs none of it: HTTP/2, redirects,
cookies, streaming bodies, ``Expect: 100-continue``, HEAD (the parser is not told the method, so a
HEAD answer's Content-Length would be waited for), socks proxies and proxy auth other than Basic,
compressed transfer-codings (``Transfer-Encoding: gzip``; ``Content-Encoding`` is decoded).
``tests/test_llm_http1.py`` proves each behaviour against servers that send exact bytes.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import zlib
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

import httptools

from glan_dataset.errors import ConfigurationError

IDLE_SECONDS = 15.0  # a kept-alive connection idle longer is closed, not reused (servers drop them at 5-75 s)


class ConnectFault(Exception):
    """No connection could be opened (refused, DNS, TLS, proxy refusal, connect timeout)."""


class TimeoutFault(Exception):
    """The answer did not come within the deadline."""


class ConnectionFault(Exception):
    """The connection broke during the call (reset, closed early, malformed or truncated answer)."""


class Response(NamedTuple):
    status: int
    headers: dict[str, str]  # names in lower case; repeated headers joined with ", "
    body: bytes  # decoded from gzip/deflate


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        return cls(parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))

    @property
    def host_port(self) -> str:
        """``host:port`` with the port always there (an IPv6 literal in brackets): CONNECT's target."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def authority(self) -> str:
        """``host_port`` without a default port: the Host header and the absolute form."""
        return self.host_port.removesuffix(":443" if self.scheme == "https" else ":80")


class _Connection(asyncio.Protocol):
    """One socket: at most one request in flight; the answer resolves ``waiter``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self.served = 0  # answers completed on this socket: a reused one may have been closed by the server
        self.idle_since = 0.0
        self.tunnel_reply: asyncio.Future[bytes] | None = None
        self._tunnel_buffer = b""
        self._begin()

    def _begin(self) -> None:
        self.received = False
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.headers_done = False

    # ----- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.tunnel_reply is not None:
            self._tunnel_data(data)
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(ConnectionFault(f"malformed HTTP answer: {error}"[:200]))
            self.close()

    def eof_received(self) -> bool:
        return False  # close; connection_lost decides what the EOF means

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.tunnel_reply is not None and not self.tunnel_reply.done():
            self.tunnel_reply.set_exception(ConnectFault("the proxy closed the connection during CONNECT"))
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        # llhttp reads to the close unless there is a length or a chunked coding ("Transfer-Encoding: identity" has none)
        framed = "content-length" in self.headers or "chunked" in self.headers.get("transfer-encoding", "").lower()
        if self.headers_done and not framed and exc is None:  # a close-delimited body ends with a clean close
            self._complete(keep_alive=False)
        elif not self.received:
            waiter.set_exception(ConnectionFault("the server closed the connection without answering"))
        else:
            waiter.set_exception(ConnectionFault("the server closed the connection before the answer was complete"))

    # ----- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.waiter is None:  # an answer nobody asked for (bytes past the last one, a 408 to an idle socket)
            self.close()  # whole or in part, it would be read as the answer to the next request

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self.headers.get(key)
        self.headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            self._begin()
            self.received = True  # the server has the request: a close now is no stale connection to retry
            return
        self._complete(keep_alive=self.parser.should_keep_alive())

    # ----- ours ----------------------------------------------------------------------------------

    def _complete(self, keep_alive: bool) -> None:
        waiter, self.waiter = self.waiter, None
        response = Response(self.status, self.headers, b"".join(self.body))
        self._begin()
        if not keep_alive:
            self.close()
        if waiter is None or waiter.done():  # an answer nobody asked for: the socket's state is unknown
            self.close()
            return
        self.served += 1
        waiter.set_result(response)

    def _fail(self, error: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def send(self, data: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None
        self.waiter = waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    async def open_tunnel(self, request: bytes) -> int:
        """Send CONNECT and wait for the proxy's reply head; the status code."""
        self.tunnel_reply = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(request)
        try:
            head = await self.tunnel_reply
        finally:
            self.tunnel_reply = None
        try:  # the status line alone: "HTTP/1.1 200" may have no reason phrase and be followed by headers
            return int(head.split(b"\r\n", 1)[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise ConnectFault("the proxy sent a malformed reply to CONNECT") from None

    def _tunnel_data(self, data: bytes) -> None:
        self._tunnel_buffer += data
        end = self._tunnel_buffer.find(b"\r\n\r\n")
        if end >= 0 and self.tunnel_reply is not None and not self.tunnel_reply.done():
            # nothing may follow the reply before TLS starts; what does is the proxy's error body
            self.tunnel_reply.set_result(self._tunnel_buffer[:end])
            self._tunnel_buffer = b""


class ConnectionPool:
    """Keep-alive connections to one origin (directly or through one proxy). Create it anywhere; use
    it inside one event loop. ``headers`` are sent with every request."""

    def __init__(self, url: str, headers: Mapping[str, str], *, proxy: str | None = None) -> None:
        self.origin = Origin.of(url)
        self._idle: list[_Connection] = []
        self._ssl: ssl.SSLContext | None = None
        self._proxy: Origin | None = None
        self._absolute = b""  # request-target prefix through an http proxy (absolute form)
        self._connect_request = b""  # CONNECT through a proxy to an https origin
        fields = {"Host": self.origin.authority, "Accept-Encoding": "gzip, deflate", **headers}
        if proxy:
            if "://" not in proxy:
                proxy = f"http://{proxy}"  # "host:port", as curl and requests read a proxy without a scheme
            parts = urlsplit(proxy)
            if parts.scheme not in ("http", "https") or not parts.hostname:  # the message leaves out credentials
                raise ConfigurationError(
                    f"the proxy {parts.scheme}://{parts.hostname or ''} for {self.origin.authority} is not supported "
                    "(http:// and https:// proxies are): change HTTPS_PROXY/HTTP_PROXY/ALL_PROXY or add the host "
                    "to NO_PROXY"
                )
            self._proxy = Origin.of(proxy)
            credentials = ""
            if parts.username is not None:
                token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
                credentials = f"Proxy-Authorization: Basic {base64.b64encode(token).decode()}\r\n"
            if self.origin.scheme == "http":
                self._absolute = f"http://{self.origin.authority}".encode("latin-1")
                fields_text = credentials
            else:
                target = self.origin.host_port
                connect = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{credentials}\r\n"
                self._connect_request = connect.encode("latin-1")
                fields_text = ""
        else:
            fields_text = ""
        for name, value in fields.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"the HTTP header {name} contains a line break")
            fields_text += f"{name}: {value}\r\n"
        self._header_block = fields_text.encode("latin-1")

    def __repr__(self) -> str:  # never show the header block: it holds the key
        via = f" via {self._proxy.authority}" if self._proxy else ""
        return f"ConnectionPool({self.origin.scheme}://{self.origin.authority}{via}, idle={len(self._idle)})"

    async def request(self, method: str, path: str, body: bytes = b"", *, timeout: float) -> Response:
        """One request with a total deadline of ``timeout`` seconds (connecting included)."""
        head = b"%s %s%s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n" % (
            method.encode(),
            self._absolute,
            path.encode(),
            self._header_block,
            len(body),
        )
        data = head + body
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            connection = self._reuse()
            if connection is None:
                try:
                    async with asyncio.timeout_at(deadline):
                        connection = await self._connect()
                except TimeoutError:
                    raise ConnectFault(f"connecting to {self._where()} timed out after {timeout:g}s") from None
            waiter = connection.send(data)
            # one timer handle, not asyncio.timeout's context and task bookkeeping: ~5% of the engine's CPU
            timer = loop.call_at(deadline, _expire, connection, waiter, timeout)
            try:
                response = await waiter
            except ConnectionFault:
                if connection.served and not connection.received:
                    continue  # the server had closed the idle connection: once more on a new one
                raise
            except BaseException:  # cancelled or timed out mid-answer: the socket's state is unknown
                connection.abort()
                raise
            finally:
                timer.cancel()
            if not connection.closed:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            return _decoded(response)

    def _reuse(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            transport = connection.transport
            if connection.closed or transport is None or transport.is_closing():
                continue
            if now - connection.idle_since > IDLE_SECONDS:
                connection.close()
                continue
            return connection
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        origin = self.origin
        tls = origin.scheme == "https"
        proxy_tls = self._proxy is not None and self._proxy.scheme == "https"
        if (tls or proxy_tls) and self._ssl is None:
            self._ssl = ssl.create_default_context()  # the system store, as aiohttp and curl use it
            self._ssl.set_alpn_protocols(["http/1.1"])
        try:
            if self._proxy is None:
                _, connection = await loop.create_connection(
                    _Connection, origin.host, origin.port, ssl=self._ssl if tls else None
                )
            else:  # an https proxy: TLS with the proxy, and for an https origin TLS again inside the tunnel
                transport, connection = await loop.create_connection(
                    _Connection, self._proxy.host, self._proxy.port, ssl=self._ssl if proxy_tls else None
                )
                if tls:
                    try:
                        await self._tunnel(transport, connection)
                    except BaseException:
                        connection.abort()
                        raise
        except OSError as error:  # refused, DNS (gaierror), TLS (SSLError), unreachable
            reason = error.strerror or str(error) or type(error).__name__
            raise ConnectFault(f"cannot connect to {self._where()}: {reason}"[:200]) from None
        return connection

    async def _tunnel(self, transport: asyncio.Transport, connection: _Connection) -> None:
        """CONNECT through the proxy, then TLS with the origin inside the tunnel."""
        assert self._proxy is not None and self._ssl is not None
        status = await connection.open_tunnel(self._connect_request)
        if not 200 <= status < 300:  # any 2xx opens the tunnel (RFC 9110 9.3.6)
            raise ConnectFault(f"the proxy {self._proxy.authority} answered {status} to CONNECT")
        loop = asyncio.get_running_loop()
        tls_transport = await loop.start_tls(transport, connection, self._ssl, server_hostname=self.origin.host)
        if tls_transport is None:
            raise ConnectFault("the proxy tunnel closed during the TLS handshake")
        connection.transport = tls_transport  # type: ignore[assignment]

    def _where(self) -> str:
        if self._proxy is not None:
            return f"{self.origin.authority} via the proxy {self._proxy.authority}"
        return self.origin.authority

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()


def _expire(connection: _Connection, waiter: asyncio.Future[Response], timeout: float) -> None:
    """The deadline passed with the answer incomplete: fail the request and drop the socket."""
    if not waiter.done():
        waiter.set_exception(TimeoutFault(f"no complete answer within {timeout:g}s"))
        connection.abort()


def _decoded(response: Response) -> Response:
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if not encoding or encoding == "identity" or not response.body:
        return response
    data = response.body
    try:
        if encoding in ("gzip", "x-gzip"):
            body = _inflate(data, 31)
        elif encoding == "deflate":  # zlib-wrapped as the RFC says, or raw as some servers send it
            zlib_header = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            body = _inflate(data, 15 if zlib_header else -15)
        else:
            raise ConnectionFault(f"the server sent an answer in an encoding that was not asked for: {encoding}")
    except zlib.error as error:
        raise ConnectionFault(f"a {encoding} answer could not be decoded: {error}"[:200]) from None
    return response._replace(body=body)


def _inflate(data: bytes, wbits: int) -> bytes:
    """The whole stream, never a silent prefix: ``zlib.decompress`` stops at the end of the first
    gzip member and ignores what follows, so several members (allowed, and what concatenating
    compressed writes gives) would lose all but the first. A cut stream or trailing bytes are errors."""
    parts = []
    while True:
        inflater = zlib.decompressobj(wbits)
        parts.append(inflater.decompress(data))
        if not inflater.eof:
            raise zlib.error("the compressed stream is cut short")
        data = inflater.unused_data
        if wbits == 31:
            data = data.lstrip(b"\0")  # zero padding after the last member, as gzip(1) accepts it
        if not data:
            return b"".join(parts)
        if wbits != 31:
            raise zlib.error("bytes follow the end of the compressed stream")
