"""glan_dataset.llm.http1 against what real servers send, over real 127.0.0.1 sockets: small asyncio
servers that write exact bytes (and count the connections they accept), a CONNECT proxy, TLS with a
trustme CA, and the project's loopback OpenAI server."""

from __future__ import annotations

import asyncio
import base64
import gzip
import socket
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import pytest
import trustme

from glan_dataset.errors import ConfigurationError
from glan_dataset.llm import http1
from glan_dataset.llm.http1 import ConnectFault, ConnectionFault, ConnectionPool, Response, TimeoutFault
from glan_dataset.testing.openai_server import FakeOpenAIServer, FaultPlan

SECRET = "sk-http1-SECRET-4242-do-not-leak"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Conn:
    """One accepted connection as a handler sees it: ``n`` counts from 1 in order of acceptance."""

    def __init__(self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        self.server, self.reader, self.writer, self.n = server, reader, writer, n

    async def read_request(self) -> bytes | None:
        """One request (head and body); None at a clean end of the connection."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await self.reader.readexactly(length)
        self.server.requests.append(head)
        return head + body

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer_all(self, *answers: bytes) -> None:
        """Answer every further request with ``answers`` in turn (the last repeats) until the client closes."""
        served = 0
        while await self.read_request() is not None:
            await self.send(answers[min(served, len(answers) - 1)])
            served += 1


Handler = Callable[[Conn], Awaitable[None]]


class Server:
    """A TCP (or TLS) server on 127.0.0.1 whose handler speaks for each connection; ``connections``
    counts the connections accepted, ``requests`` the request heads read."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self.handler = handler
        self.tls = tls
        self.host = host
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._accept, self.host, 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.server.close()

    def url(self, scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}/v1"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(Conn(self, reader, writer, self.connections))
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass  # the client went away: what the test checks is on the client's side
        except asyncio.CancelledError:
            pass  # the test is over (asyncio.run cancels what still runs; 3.11 logs a cancelled handler)
        finally:
            writer.close()


def answering(*answers: bytes, tls: ssl.SSLContext | None = None) -> Server:
    """A server answering every request with ``answers`` in turn (the last repeats)."""
    return Server(lambda conn: conn.answer_all(*answers), tls)


LOOPS = {"asyncio": asyncio.new_event_loop}
try:
    import uvloop
except ImportError:  # pragma: no cover (uvloop is a dependency on Linux and macOS)
    pass
else:
    LOOPS["uvloop"] = uvloop.new_event_loop


@pytest.fixture(params=list(LOOPS), autouse=True)
def loop_factory(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test on both loops: runs use uvloop (glan_dataset.eventloop), GLAN_EVENT_LOOP=asyncio and
    Windows asyncio's; their transports differ where it matters here (resets, EOF, TLS, start_tls)."""
    global _loop_factory
    _loop_factory = LOOPS[request.param]
    yield
    _loop_factory = asyncio.new_event_loop


_loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop


def run(coroutine: Coroutine[Any, Any, object]) -> object:
    with asyncio.Runner(loop_factory=_loop_factory) as runner:
        return runner.run(coroutine)


def pool(server: Server, **kwargs: object) -> ConnectionPool:
    return ConnectionPool(server.url(), {"Authorization": f"Bearer {SECRET}"}, **kwargs)  # type: ignore[arg-type]


async def get(client: ConnectionPool, timeout: float = 5.0) -> Response:
    return await client.request("POST", "/v1/chat/completions", b'{"x": 1}', timeout=timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ----- keep-alive ---------------------------------------------------------------------------------


def test_sequential_requests_share_one_connection_and_send_exact_framing():
    async def main() -> None:
        async with answering(OK) as server:
            client = pool(server)
            for _ in range(25):
                response = await get(client)
                assert (response.status, response.body) == (200, b"ok")
            await client.aclose()
        assert server.connections == 1
        assert len(server.requests) == 25
        head = server.requests[0].decode()
        lines = head.split("\r\n")
        assert lines[0] == "POST /v1/chat/completions HTTP/1.1"
        assert f"Host: 127.0.0.1:{server.port}" in lines
        assert f"Authorization: Bearer {SECRET}" in lines
        assert "Content-Length: 8" in lines
        assert "Accept-Encoding: gzip, deflate" in lines

    run(main())


def test_concurrent_requests_open_one_connection_each_then_reuse_them():
    async def main() -> None:
        async with answering(OK) as server:
            client = pool(server)
            for _ in range(3):
                responses = await asyncio.gather(*(get(client) for _ in range(8)))
                assert all(r.body == b"ok" for r in responses)
            await client.aclose()
        assert server.connections == 8

    run(main())


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",  # HTTP/1.0 closes unless it says keep-alive
    ],
    ids=["connection-close", "http/1.0"],
)
def test_answers_that_close_are_not_reused(answer):
    """The server keeps the socket open after such an answer: only the client can decide not to reuse it."""

    async def main() -> None:
        async with answering(answer) as server:
            client = pool(server)
            for _ in range(3):
                assert (await get(client)).body == b"ok"
            await client.aclose()
        assert server.connections == 3

    run(main())


def test_an_http_1_0_keep_alive_answer_is_reused():
    async def main() -> None:
        answer = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"
        async with answering(answer) as server:
            client = pool(server)
            for _ in range(3):
                assert (await get(client)).body == b"ok"
            await client.aclose()
        assert server.connections == 1

    run(main())


@pytest.mark.parametrize(
    "beyond", [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale", b"HTTP/1.1 200 OK\r\nCont"], ids=["whole", "part"]
)
def test_a_connection_with_bytes_beyond_the_answer_is_not_reused(beyond):
    """A Content-Length shorter than the body sent: the answer is what the length says; the rest (whole
    or the start of an answer) would be read as the next answer, so the connection is dropped."""
    answers = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + beyond, b"ent-Length: 5\r\n\r\nstale" + OK)

    async def main() -> None:
        async with answering(*answers) as server:
            client = pool(server)
            assert (await get(client)).body == b"ok"
            assert (await get(client)).body == b"ok"
            await client.aclose()
        assert server.connections == 2

    run(main())


def test_an_ipv6_literal_origin():
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")

    async def main() -> None:
        server = Server(lambda conn: conn.answer_all(OK), host="::1")
        async with server:
            client = ConnectionPool(server.url(host="[::1]"), {})
            for _ in range(2):
                assert (await get(client)).body == b"ok"
            await client.aclose()
        assert server.connections == 1
        assert f"Host: [::1]:{server.port}".encode() in server.requests[0]

    run(main())


def test_an_idle_connection_past_the_idle_limit_is_not_reused(monkeypatch):
    monkeypatch.setattr(http1, "IDLE_SECONDS", 0.05)

    async def main() -> None:
        async with answering(OK) as server:
            client = pool(server)
            await get(client)
            await get(client)
            await asyncio.sleep(0.1)
            await get(client)
            await client.aclose()
        assert server.connections == 2

    run(main())


# ----- bodies -------------------------------------------------------------------------------------

TEXT = b'{"choices": [{"message": {"content": "entropy grows"}}]}' * 20


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


def _chunked(data: bytes, size: int = 100) -> bytes:
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def _sized(headers: bytes, body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (headers, len(body), body)


BODIES = {
    "content-length": _sized(b"", TEXT),
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(TEXT),
    "chunked-extensions-trailers": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"5;name=value\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n",
    "gzip": _sized(b"Content-Encoding: gzip\r\n", gzip.compress(TEXT)),
    "gzip-chunked": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    + _chunked(gzip.compress(TEXT), 7),
    "gzip-two-members": _sized(b"Content-Encoding: gzip\r\n", gzip.compress(TEXT[:300]) + gzip.compress(TEXT[300:])),
    "deflate-zlib": _sized(b"Content-Encoding: deflate\r\n", zlib.compress(TEXT)),
    "deflate-raw": _sized(b"Content-Encoding: deflate\r\n", _raw_deflate(TEXT)),
    "identity": _sized(b"Content-Encoding: identity\r\n", TEXT),
    "no-reason-phrase": b"HTTP/1.1 200\r\nContent-Length: %d\r\n\r\n%s" % (len(TEXT), TEXT),
}
EXPECTED = {"chunked-extensions-trailers": b"hello"}


@pytest.mark.parametrize("name", BODIES)
def test_bodies_are_framed_and_decoded(name):
    async def main() -> None:
        async with answering(BODIES[name]) as server:
            client = pool(server)
            for _ in range(2):  # and the connection is still in step for the next answer
                response = await get(client)
                assert (response.status, response.body) == (200, EXPECTED.get(name, TEXT))
            await client.aclose()
        assert server.connections == 1

    run(main())


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n",  # a coding, but no chunks: to the close
    ],
    ids=["1.1", "1.0", "te-identity"],
)
def test_a_close_delimited_body_ends_with_the_connection(head):
    async def handler(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(head)
        for i in range(0, len(TEXT), 200):
            await conn.send(TEXT[i : i + 200])
            await asyncio.sleep(0.005)

    async def main() -> None:
        async with Server(handler) as server:
            client = pool(server)
            response = await get(client)
            assert (response.status, response.body) == (200, TEXT)
            assert (await get(client)).body == TEXT  # on a new connection
            await client.aclose()
        assert server.connections == 2

    run(main())


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_bad_compressed_body_is_a_connection_fault(encoding):
    """Trailing bytes after the stream or a cut stream are never returned as a shorter body."""
    whole = gzip.compress(TEXT) if encoding == "gzip" else zlib.compress(TEXT)

    async def main() -> None:
        for body in (whole[:-9], whole + b"junk after the stream"):
            async with answering(_sized(b"Content-Encoding: %s\r\n" % encoding.encode(), body)) as server:
                client = pool(server)
                with pytest.raises(ConnectionFault, match=encoding):
                    await get(client)
                await client.aclose()

    run(main())


def test_an_empty_204_and_a_304_answer_and_the_connection_is_reused():
    answers = (
        b"HTTP/1.1 204 No Content\r\nContent-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\n\r\n",
        OK,
    )

    async def main() -> None:
        async with answering(*answers) as server:
            client = pool(server)
            assert tuple(await get(client)) == (204, {"content-encoding": "gzip"}, b"")
            assert (await get(client))[::2] == (304, b"")
            assert (await get(client)).body == b"ok"
            await client.aclose()
        assert server.connections == 1

    run(main())


def test_header_names_are_lower_cased_and_repeated_headers_joined():
    answer = (
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nX-RateLimit-Remaining-Requests: 0\r\n"
        b"Set-Cookie: a=1\r\nset-cookie: b=2\r\nVia: 1.1 one\r\nVIA: 1.1 two\r\nContent-Length: 2\r\n\r\nno"
    )

    async def main() -> None:
        async with answering(answer) as server:
            client = pool(server)
            response = await get(client)
            await client.aclose()
        assert response.status == 429 and response.body == b"no"
        assert response.headers == {
            "retry-after": "2",
            "x-ratelimit-remaining-requests": "0",
            "set-cookie": "a=1, b=2",
            "via": "1.1 one, 1.1 two",
            "content-length": "2",
        }

    run(main())


def test_interim_answers_are_skipped():
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"
    )

    async def main() -> None:
        async with answering(answer) as server:
            client = pool(server)
            for _ in range(2):
                response = await get(client)
                assert response == (200, {"content-length": "5"}, b"final")
            await client.aclose()
        assert server.connections == 1

    run(main())


def test_the_project_loopback_server_over_keep_alive():
    """aiohttp's server (the loopback OpenAI server): chat calls and GET /models, sequential and concurrent."""
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Name a subject."}]}'

    async def main(url: str) -> None:
        client = ConnectionPool(url, {"Authorization": "Bearer sk-x", "Content-Type": "application/json"})
        for _ in range(10):
            response = await client.request("POST", "/v1/chat/completions", body, timeout=5)
            assert response.status == 200 and b'"choices"' in response.body
        responses = await asyncio.gather(
            *(client.request("POST", "/v1/chat/completions", body, timeout=5) for _ in range(10))
        )
        assert all(r.status == 200 for r in responses)
        models = await client.request("GET", "/v1/models", timeout=5)
        assert models.status == 200 and b"gpt-4o-mini" in models.body
        await client.aclose()

    with FakeOpenAIServer(latency=0.0, seed=0) as server:
        run(main(server.base_url))
        assert server.stats.chat_calls == 20 and server.stats.chat_ok == 20


# ----- failures -----------------------------------------------------------------------------------


def test_a_server_that_closed_the_idle_connection_costs_nothing():
    """The server closes every connection right after its answer (as a keep-alive timeout would)."""

    async def handler(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(OK)

    async def main() -> None:
        async with Server(handler) as server:
            client = pool(server)
            for _ in range(3):
                assert (await get(client)).body == b"ok"
                await asyncio.sleep(0.02)
            await client.aclose()
        assert server.connections == 3

    run(main())


def test_a_reused_connection_closed_before_any_answer_is_retried_once_on_a_new_one():
    """The race of a keep-alive timeout: the server drops the idle connection as the request arrives."""
    seen: list[int] = []

    async def handler(conn: Conn) -> None:
        await conn.read_request()
        seen.append(conn.n)
        if conn.n == 1:
            await conn.send(OK)
            await conn.read_request()  # the next request arrives; the connection closes unanswered
            seen.append(conn.n)
            return
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nretry")
        await conn.read_request()

    async def main() -> None:
        async with Server(handler) as server:
            client = pool(server)
            assert (await get(client)).body == b"ok"
            assert (await get(client)).body == b"retry"
            await client.aclose()
        assert server.connections == 2 and seen == [1, 1, 2]

    run(main())


def test_the_retry_on_a_new_connection_happens_once():
    async def handler(conn: Conn) -> None:
        await conn.read_request()
        if conn.n == 1:
            await conn.send(OK)
            await conn.read_request()
        # every later connection closes without an answer

    async def main() -> None:
        async with Server(handler) as server:
            client = pool(server)
            await get(client)
            with pytest.raises(ConnectionFault, match="without answering"):
                await get(client)
            await client.aclose()
        assert server.connections == 2

    run(main())


def test_a_reused_connection_that_began_answering_is_not_retried():
    """A 100 Continue means the server has the request: a retry could pay for it twice."""

    async def handler(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(OK)
        if conn.n == 1:
            await conn.read_request()
            await conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            await asyncio.sleep(0.02)

    async def main() -> None:
        async with Server(handler) as server:
            client = pool(server)
            await get(client)
            with pytest.raises(ConnectionFault, match="before the answer was complete"):
                await get(client)
            await client.aclose()
        assert server.connections == 1

    run(main())


def test_a_fresh_connection_closed_without_an_answer_is_a_connection_fault():
    async def handler(conn: Conn) -> None:
        await conn.read_request()

    async def main() -> None:
        async with Server(handler) as server:
            client = pool(server)
            with pytest.raises(ConnectionFault, match="without answering"):
                await get(client)
            await client.aclose()
        assert server.connections == 1  # not retried: the server may have acted on it

    run(main())


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed server or a middlebox does."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()


CUT = {
    "content-length": (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", False),
    "chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nwo", False),
    "chunked-no-last-chunk": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", False),
    "head": (b"HTTP/1.1 200 OK\r\nContent-Le", False),
    "close-delimited-reset": (b"HTTP/1.1 200 OK\r\n\r\n" + TEXT[:100], True),
}


@pytest.mark.parametrize("name", CUT)
def test_an_answer_cut_short_is_a_connection_fault(name):
    partial, reset = CUT[name]

    async def handler(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(partial)
        await asyncio.sleep(0.05)
        if reset:
            _reset(conn.writer)

    async def main() -> None:
        async with Server(handler) as server:
            client = pool(server)
            with pytest.raises(ConnectionFault, match="before the answer was complete"):
                await get(client)
            await client.aclose()

    run(main())


@pytest.mark.parametrize(
    "garbage",
    [b"SSH-2.0-OpenSSH_9.6\r\n", b"<html>hello</html>\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n", b"\x16\x03\x01\x00\xa5"],
    ids=["ssh", "html", "bad-status", "tls-record"],
)
def test_garbage_instead_of_http_is_a_connection_fault(garbage):
    async def handler(conn: Conn) -> None:
        await conn.read_request()
        await conn.send(garbage)
        await conn.reader.read()  # the server stays: the client must give up on what it read

    async def main() -> None:
        async with Server(handler) as server:
            client = pool(server)
            with pytest.raises(ConnectionFault, match="malformed HTTP answer"):
                await get(client)
            await client.aclose()

    run(main())


def test_a_refused_port_is_a_connect_fault():
    async def main() -> None:
        port = free_port()
        client = ConnectionPool(f"http://127.0.0.1:{port}/v1", {})
        with pytest.raises(ConnectFault, match=f"127.0.0.1:{port}"):
            await get(client)

    run(main())


def test_a_drip_body_is_cut_at_the_deadline_and_its_connection_is_dropped():
    dropped = asyncio.Event()  # the drip server found its connection closed by the client

    async def handler(conn: Conn) -> None:
        await conn.read_request()
        if conn.n == 1:
            await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            try:
                for _ in range(1000):
                    await conn.send(b"x")
                    await asyncio.sleep(0.02)
            except ConnectionError:
                dropped.set()
            return
        await conn.send(OK)
        while await conn.read_request() is not None:
            await conn.send(OK)

    async def main() -> None:
        async with Server(handler) as server:
            client = pool(server)
            start = time.monotonic()
            with pytest.raises(TimeoutFault, match="within 0.4s"):
                await get(client, timeout=0.4)
            elapsed = time.monotonic() - start
            assert 0.39 <= elapsed < 0.7  # uvloop's timers have millisecond resolution
            await asyncio.wait_for(dropped.wait(), 0.5)
            assert (await get(client)).body == b"ok"
            assert (await get(client)).body == b"ok"
            await client.aclose()
        assert server.connections == 2

    run(main())


def test_a_drip_from_the_project_loopback_server_is_cut_at_the_deadline():
    async def main(url: str) -> float:
        client = ConnectionPool(url, {})
        body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
        start = time.monotonic()
        with pytest.raises(TimeoutFault):
            await client.request("POST", "/v1/chat/completions", body, timeout=0.5)
        return time.monotonic() - start

    with FakeOpenAIServer(latency=0.0) as server:
        server.set_faults(FaultPlan(rate_drip=1.0, drip_interval=0.05))
        assert 0.49 <= run(main(server.base_url)) < 0.8  # type: ignore[operator]


def test_a_connect_that_cannot_finish_is_a_connect_fault_naming_the_timeout():
    """https to a plain TCP server that never answers the TLS handshake."""

    async def handler(conn: Conn) -> None:
        await conn.reader.read()

    async def main() -> None:
        async with Server(handler) as server:
            client = ConnectionPool(server.url("https"), {})
            start = time.monotonic()
            with pytest.raises(ConnectFault, match="timed out after 0.3s"):
                await get(client, timeout=0.3)
            assert time.monotonic() - start < 0.6

    run(main())


def test_a_request_cancelled_mid_answer_leaves_no_broken_connection():
    dropped = asyncio.Event()  # the client closed the connection of the cancelled request

    async def handler(conn: Conn) -> None:
        await conn.read_request()
        if conn.n == 1:
            await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfi")
            if await conn.reader.read() == b"":
                dropped.set()
            return
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
        while await conn.read_request() is not None:
            await conn.send(OK)

    async def main() -> None:
        async with Server(handler) as server:
            client = pool(server)
            task = asyncio.create_task(get(client))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(dropped.wait(), 0.5)  # closed at once, not left open in or out of the pool
            assert (await get(client)).body == b"second"
            assert (await get(client)).body == b"ok"
            await client.aclose()
        assert server.connections == 2

    run(main())


# ----- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


@pytest.fixture
def trusted(ca, tmp_path, monkeypatch) -> trustme.CA:
    """The CA is the trust store, through SSL_CERT_FILE as OpenSSL reads it."""
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return ca


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_an_https_origin_with_a_trusted_certificate(trusted, host):
    async def main() -> None:
        async with answering(BODIES["gzip-chunked"], tls=tls_server_context(trusted, "127.0.0.1", "localhost")) as s:
            client = ConnectionPool(s.url("https", host), {"Authorization": f"Bearer {SECRET}"})
            for _ in range(3):
                assert (await get(client)).body == TEXT
            await client.aclose()
        assert s.connections == 1

    run(main())


def test_an_untrusted_certificate_is_a_connect_fault(ca, tmp_path, monkeypatch):
    other = trustme.CA()  # the store trusts another CA, not the one that signed the server's certificate
    path = tmp_path / "other.pem"
    other.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)

    async def main() -> None:
        async with answering(OK, tls=tls_server_context(ca, "127.0.0.1")) as server:
            client = ConnectionPool(server.url("https"), {})
            with pytest.raises(ConnectFault, match="CERTIFICATE_VERIFY_FAILED"):
                await get(client)

    run(main())


def test_a_certificate_for_another_host_is_a_connect_fault(trusted):
    async def main() -> None:
        async with answering(OK, tls=tls_server_context(trusted, "api.example.test")) as server:
            client = ConnectionPool(server.url("https"), {})
            with pytest.raises(ConnectFault, match="CERTIFICATE_VERIFY_FAILED|match"):
                await get(client)

    run(main())


# ----- proxies ------------------------------------------------------------------------------------


class ConnectProxy:
    """A CONNECT proxy on 127.0.0.1 that requires Basic credentials; counts the tunnels it opened."""

    def __init__(
        self,
        user: str,
        password: str,
        reply: bytes = b"HTTP/1.1 200 Connection established\r\n\r\n",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.reply = reply
        self.tls = tls
        self.tunnels = 0
        self.targets: list[str] = []

    async def __aenter__(self) -> ConnectProxy:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.server.close()

    def url(self, credentials: str = "") -> str:
        return f"{'https' if self.tls else 'http'}://{credentials}127.0.0.1:{self.port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, target, _ = head[0].split(" ")
            fields = dict(line.split(": ", 1) for line in head[1:] if line)
            fields = {name.lower(): value for name, value in fields.items()}
            self.targets.append(target)
            if method != "CONNECT" or fields.get("host") != target:
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                return
            if fields.get("proxy-authorization") != self.expected:
                writer.write(
                    b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="p"\r\n'
                    b"Content-Length: 12\r\n\r\nwho are you?"
                )
                await writer.drain()
                return
            host, port = target.rsplit(":", 1)
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
            self.tunnels += 1
            writer.write(self.reply)
            await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


@pytest.mark.parametrize(
    ("reply", "proxy_tls"),
    [
        (b"HTTP/1.1 200 Connection established\r\n\r\n", False),
        (b"HTTP/1.0 200\r\nProxy-Agent: squid\r\nVia: 1.1 proxy\r\n\r\n", False),  # no reason phrase, headers
        (b"HTTP/1.1 200 Connection established\r\n\r\n", True),  # TLS with the proxy, TLS inside the tunnel
    ],
    ids=["plain", "no-reason-with-headers", "https-proxy"],
)
def test_an_https_origin_through_a_connect_proxy_with_credentials(trusted, reply, proxy_tls):
    async def main() -> None:
        context = tls_server_context(trusted, "127.0.0.1")
        proxy_context = tls_server_context(trusted, "127.0.0.1") if proxy_tls else None
        async with (
            answering(OK, tls=context) as origin,
            ConnectProxy("us@er", "p:ss/w%rd", reply, proxy_context) as proxy,
        ):
            proxy_url = proxy.url("us%40er:p%3Ass%2Fw%25rd@")
            client = ConnectionPool(origin.url("https"), {"Authorization": f"Bearer {SECRET}"}, proxy=proxy_url)
            for _ in range(3):
                assert (await get(client)).body == b"ok"
            assert SECRET not in repr(client) and "p:ss" not in repr(client) and "p%3Ass" not in repr(client)
            await client.aclose()
        assert proxy.tunnels == 1 and proxy.targets == [f"127.0.0.1:{origin.port}"]
        assert origin.requests[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert b"Proxy-Authorization" not in origin.requests[0]  # the proxy's credentials stay with the proxy

    run(main())


def test_a_proxy_refusing_the_credentials_is_a_connect_fault_naming_the_status(trusted):
    async def main() -> None:
        async with answering(OK, tls=tls_server_context(trusted, "127.0.0.1")) as origin:
            async with ConnectProxy("user", "right") as proxy:
                client = ConnectionPool(origin.url("https"), {}, proxy=f"http://user:wrong@127.0.0.1:{proxy.port}")
                with pytest.raises(ConnectFault, match="407"):
                    await get(client)
                client = ConnectionPool(origin.url("https"), {}, proxy=f"http://127.0.0.1:{proxy.port}")
                with pytest.raises(ConnectFault, match="407"):
                    await get(client)
        assert origin.connections == 0

    run(main())


def test_a_connect_proxy_that_closes_is_a_connect_fault():
    async def handler(conn: Conn) -> None:
        await conn.reader.readuntil(b"\r\n\r\n")

    async def main() -> None:
        async with Server(handler) as proxy:
            client = ConnectionPool("https://127.0.0.1:1/v1", {}, proxy=f"http://127.0.0.1:{proxy.port}")
            with pytest.raises(ConnectFault, match="proxy"):
                await get(client)

    run(main())


@pytest.mark.parametrize("scheme", ["http", "https", ""])
def test_an_http_origin_through_a_proxy_uses_the_absolute_form(trusted, scheme):
    """The proxy (here a server writing exact bytes) receives the absolute URL and its own credentials;
    a proxy without a scheme is an http one, as curl reads it."""

    async def main() -> None:
        tls = tls_server_context(trusted, "127.0.0.1") if scheme == "https" else None
        async with answering(OK, tls=tls) as proxy:
            client = ConnectionPool(
                "http://api.example.test:8000/v1",
                {"Authorization": f"Bearer {SECRET}"},
                proxy=f"{scheme}{'://' if scheme else ''}me:s%23cret@127.0.0.1:{proxy.port}",
            )
            for _ in range(2):
                assert (await get(client)).body == b"ok"
            assert SECRET not in repr(client) and "cret" not in repr(client)
            await client.aclose()
        assert proxy.connections == 1
        lines = proxy.requests[0].decode().split("\r\n")
        assert lines[0] == "POST http://api.example.test:8000/v1/chat/completions HTTP/1.1"
        assert "Host: api.example.test:8000" in lines
        assert "Proxy-Authorization: Basic " + base64.b64encode(b"me:s#cret").decode() in lines

    run(main())


def test_the_project_loopback_server_as_an_http_proxy():
    async def main(proxy: str) -> None:
        client = ConnectionPool(f"http://127.0.0.1:{free_port()}/v1", {}, proxy=proxy)
        body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
        response = await client.request("POST", "/v1/chat/completions", body, timeout=5)
        assert response.status == 200
        await client.aclose()

    with FakeOpenAIServer(latency=0.0) as server:
        run(main(f"http://127.0.0.1:{server.port}"))
        assert server.stats.chat_calls == 1


@pytest.mark.parametrize("proxy", ["socks5://me:s3cret@127.0.0.1:1080", "ftp://me:s3cret@proxy.test"])
def test_an_unsupported_proxy_is_a_configuration_error_without_its_credentials(proxy):
    with pytest.raises(ConfigurationError, match="is not supported") as caught:
        ConnectionPool("https://api.openai.com/v1", {}, proxy=proxy)
    assert "s3cret" not in str(caught.value) and "NO_PROXY" in str(caught.value)


# ----- secrets ------------------------------------------------------------------------------------


def test_the_pool_repr_never_shows_the_key():
    client = ConnectionPool("https://api.openai.com/v1", {"Authorization": f"Bearer {SECRET}"})
    assert SECRET not in repr(client) and "api.openai.com" in repr(client)
    assert SECRET not in str(client)
