"""The web server against a careless or hostile client, over raw sockets to `hallwatch engine
--http` as a process, its log captured: malformed requests, slow and surplus connections,
guessed tokens, and the headers that keep a browser safe."""

from __future__ import annotations

import json
import socket
import time

import pytest
from conftest import free_port, wait_for_port, wait_until
from web_helpers import SUPERVISOR_TOKEN, token_environment

from queue_engine.web.errors import dumps

pytestmark = pytest.mark.integration


class Answer:
    def __init__(self, raw: bytes):
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/") else 0
        self.headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers.setdefault(name.strip().lower(), []).append(value.strip())

    def header(self, name: str) -> str:
        return ", ".join(self.headers.get(name.lower(), []))

    def json(self) -> dict:
        assert self.header("Content-Type").startswith("application/json"), (self.status, self.body[:200])
        return json.loads(self.body)


def exchange(port: int, data: bytes, timeout: float = 20.0) -> Answer:
    """Send ``data`` as it is and read the answer until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return Answer(received)


def request(method: str, path: str, *headers: bytes, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: hall", b"Connection: close", *headers]
    if body:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@pytest.fixture
def web_engine(engine_factory, monkeypatch):
    """``hallwatch engine --http`` on a free port with the test tokens; more options as asked."""

    def start(*options: str):
        for name, value in token_environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("HALLWATCH_TICKET_SECRET", "a-ticket-secret-for-the-hardening-tests")
        port = free_port()
        engine = engine_factory(extra_args=["--http", f"127.0.0.1:{port}", *options]).start()
        wait_for_port(port)
        engine.port = port
        return engine

    return start


def lines_about(engine, text: str) -> list[str]:
    return [line for line in engine.log_text().splitlines() if text in line]


def one_line_about(engine, text: str) -> str:
    """The log's line about ``text``: there is exactly one, and no traceback anywhere."""
    wait_until(lambda: lines_about(engine, text), what=f"a log line about {text}")
    log = engine.log_text()
    assert "Traceback" not in log, log
    (line,) = lines_about(engine, text)
    return line


def test_malformed_requests_get_a_json_400_and_one_log_line(web_engine):
    engine = web_engine()
    port = engine.port
    tickets = "/api/v1/sites/demo/tickets"

    # JSON nested past the parser's recursion limit.
    answer = exchange(port, request("POST", tickets, b"Content-Type: application/json", body=b"[" * 4096))
    assert answer.status == 400 and answer.json()["error"] == "bad_json", answer.body
    one_line_about(engine, tickets)

    # Bytes that are not UTF-8 where a token is read.
    answer = exchange(port, request("GET", "/api/v1/supervise", b"Authorization: Bearer \xff\xfe"))
    assert (answer.status, answer.json()["error"]) == (400, "bad_header")
    assert "Authorization" in answer.json()["message"]
    one_line_about(engine, "/api/v1/supervise")
    answer = exchange(port, request("GET", "/api/v1/alerts", b"Cookie: hw_supervise=\xff"))
    assert (answer.status, answer.json()["error"]) == (400, "bad_header")
    one_line_about(engine, "/api/v1/alerts")
    # A page that reads the cookie answers with its login form, the same status.
    answer = exchange(port, request("GET", "/manage/demo", b"Cookie: hw_manage_demo=\xff"))
    assert answer.status == 400 and "Traceback" not in engine.log_text()

    # A lone surrogate in a JSON string is no text: refused, and nothing echoes it back.
    body = json.dumps({"service": "\ud800", "phone": "13800000000"}).encode()
    answer = exchange(port, request("POST", tickets, b"Content-Type: application/json", body=body))
    assert (answer.status, answer.json()["error"]) == (400, "bad_json")
    # Were one echoed in an answer, it would still be valid UTF-8 (escaped).
    assert json.loads(dumps({"service": "\ud800"}).encode("utf-8")) == {"service": "\ud800"}

    # A login form that is not one.
    answer = exchange(port, request("POST", "/login", b"Content-Type: multipart/form-data", body=b"xxxxx"))
    assert (answer.status, answer.json()["error"]) == (400, "bad_form")

    # Refused by aiohttp's parser before any handler runs: a NUL byte in a header, a header name
    # that is not a token, a request line that is not HTTP.
    for data, marker in (
        (request("GET", "/healthz", b"X-Probe-Nul: a\x00b"), "X-Probe-Nul"),
        (request("GET", "/healthz", b"X-Probe-\xff: 1"), "X-Probe-\\xff"),
        (b"PROBEGARBAGE\r\n\r\n", "PROBEGARBAGE"),
    ):
        answer = exchange(port, data)
        assert (answer.status, answer.json()["error"]) == (400, "bad_request"), answer.body
        one_line_about(engine, marker)
    # A flood of the same costs no more lines (they are summed up at the end of the minute).
    deep = request("POST", tickets, b"Content-Type: application/json", body=b"[" * 4096)
    for _ in range(20):
        assert exchange(port, deep).status == 400
    one_line_about(engine, tickets)
    # Still serving.
    answer = exchange(port, request("GET", "/api/v1/supervise", b"Authorization: Bearer " + SUPERVISOR_TOKEN.encode()))
    assert answer.status == 200 and "sites" in answer.json()


def read_until_closed(sock: socket.socket, bound: float = 20.0) -> bytes:
    """Everything the server sends until it closes the connection; fails if it is still open
    after ``bound`` seconds (a generous bound: the test asserts that it closes, not when)."""
    sock.settimeout(bound)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open; it sent {received[:200]!r}") from None
    return received


def open_stream(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: hall\r\nAccept: text/event-stream\r\n\r\n".encode())
    read_stream_until(sock, b"event: hello")
    return sock


def read_stream_until(sock: socket.socket, marker: bytes) -> bytes:
    received = b""
    while marker not in received:
        chunk = sock.recv(65536)
        assert chunk, f"the stream closed; it sent {received[-300:]!r}"
        received += chunk
    return received


def test_slow_idle_and_surplus_connections_are_closed_the_live_stream_stays(web_engine):
    engine = web_engine("--http-header-timeout", "1", "--http-idle-timeout", "3", "--http-max-connections", "6")
    port = engine.port
    board = open_stream(port, "/api/v1/sites/demo/stream")  # the hall's TV board: long-lived by design

    # Five connections that never send anything fill the server up to its cap...
    idle = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(5)]
    # ...so one more is refused at once, in JSON.
    with socket.create_connection(("127.0.0.1", port), timeout=20) as surplus:
        answer = Answer(read_until_closed(surplus))
    assert (answer.status, answer.json()["error"]) == (503, "too_many_connections")
    assert int(answer.header("Retry-After")) > 0
    one_line_about(engine, "connections open")

    # The idle ones are closed after the idle timeout, without a word.
    for sock in idle:
        assert read_until_closed(sock) == b""
        sock.close()

    # A slow loris: a header begun and never finished gets a 408 and is closed.
    with socket.create_connection(("127.0.0.1", port), timeout=20) as slow:
        slow.sendall(b"GET /api/v1/sites HTTP/1.1\r\nHost: hall\r\nX-Slow: ")
        for byte in b"abc":
            time.sleep(0.2)
            slow.sendall(bytes([byte]))
        answer = Answer(read_until_closed(slow))
    assert (answer.status, answer.json()["error"]) == (408, "header_timeout")

    # The board's stream outlived every timeout and still carries what happens.
    answer = exchange(
        port,
        request(
            "POST",
            "/api/v1/sites/demo/tickets",
            b"Content-Type: application/json",
            body=b'{"service": "shebao", "phone": "13800000000"}',
        ),
    )
    assert answer.status == 201, answer.body
    assert b'"status":"reserved"' in answer.body.replace(b" ", b"")  # (called once checked in at the hall)
    assert b'"waiting":0' in read_stream_until(board, b"event: queue").replace(b" ", b"")
    board.close()
    assert "Traceback" not in engine.log_text()


def test_a_short_token_is_refused_at_start_up(engine_factory, monkeypatch):
    for name, value in token_environment().items():
        monkeypatch.setenv(name, value)
    for variable in ("HALLWATCH_SUPERVISOR_TOKEN", "HALLWATCH_MANAGER_TOKEN_DEMO"):
        monkeypatch.setenv(variable, "x")
        # A broker nobody listens on: the tokens are checked before the engine reaches for it.
        engine = engine_factory(
            extra_args=["--http", f"127.0.0.1:{free_port()}", "--connect-timeout", "2"],
            broker_url=f"mqtt://127.0.0.1:{free_port()}",
        ).start(wait=False)
        assert engine.proc.wait(30) == 2, engine.log_text()  # the documented exit code of a bad configuration
        assert variable in engine.log_text() and "16" in engine.log_text(), engine.log_text()
        monkeypatch.setenv(variable, token_environment()[variable])


def get_from(port: int, path: str, token: str, source: str = "127.0.0.1") -> Answer:
    """GET ``path`` with ``token``, from the loopback address ``source`` (127.0.0.0/8 is all
    this machine's: a second client address without a second machine)."""
    data = request("GET", path, b"Authorization: Bearer " + token.encode())
    with socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(source, 0)) as sock:
        sock.sendall(data)
        return Answer(read_until_closed(sock))


def test_wrong_tokens_are_throttled_and_logged_per_address(web_engine):
    engine = web_engine()
    port = engine.port
    answers = [get_from(port, "/api/v1/supervise", f"guess-{n:04d}-0123456789abcdef") for n in range(30)]
    statuses = [a.status for a in answers]
    assert statuses[:10] == [403] * 10, statuses  # the default: 10 wrong tokens a minute
    assert statuses[10:] == [429] * 20, statuses
    refused = answers[-1]
    assert refused.json()["error"] == "too_many_wrong_tokens" and 0 < int(refused.header("Retry-After")) <= 60
    # The right token does not help the address that guessed: it would tell a guess that hit.
    assert get_from(port, "/api/v1/supervise", SUPERVISOR_TOKEN).status == 429
    # The login form and a token in a page's address count the same.
    assert get_from(port, "/supervise?token=nope-0123456789abcdef", "").status == 429
    # Another address is not held back by this one.
    assert get_from(port, "/api/v1/supervise", SUPERVISOR_TOKEN, source="127.0.0.2").status == 200

    # 30 wrong tokens, two lines: the first wrong token, and the refusal that followed.
    assert "wrong token from 127.0.0.1" in one_line_about(engine, "wrong token from 127.0.0.1")
    one_line_about(engine, "127.0.0.1 presented 10 wrong tokens")
    assert "127.0.0.2" not in engine.log_text()


def login_cookie(port: int, *headers: bytes, source: str = "127.0.0.1") -> str:
    """The Set-Cookie a manager's login link answers with."""
    from web_helpers import MANAGER_TOKEN

    data = request("GET", f"/manage/demo?token={MANAGER_TOKEN}", *headers)
    with socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(source, 0)) as sock:
        sock.sendall(data)
        answer = Answer(read_until_closed(sock))
    assert answer.status == 303, answer.body
    return answer.header("Set-Cookie")


def test_the_session_cookie_is_secure_behind_a_trusted_proxy_only(web_engine):
    engine = web_engine("--trusted-proxy", "127.0.0.1")
    https = b"X-Forwarded-Proto: https"
    # From the proxy, which terminated TLS: Secure.
    cookie = login_cookie(engine.port, https)
    assert "HttpOnly" in cookie and "Secure" in cookie, cookie
    # Plain HTTP through the proxy, or straight to the engine: a Secure cookie would not come back.
    assert "Secure" not in login_cookie(engine.port, b"X-Forwarded-Proto: http")
    assert "Secure" not in login_cookie(engine.port)
    # Anyone else saying so is not believed.
    assert "Secure" not in login_cookie(engine.port, https, source="127.0.0.2")
    # The proxy also says who the client is: a wrong token is the client's, not the proxy's.
    get_from(engine.port, "/api/v1/supervise", "wrong-0123456789abcdef")  # from the proxy itself
    data = request(
        "GET", "/api/v1/supervise", b"Authorization: Bearer wrong-0123456789abcdef", b"X-Forwarded-For: 203.0.113.7"
    )
    assert exchange(engine.port, data).status == 403
    one_line_about(engine, "wrong token from 203.0.113.7")


def test_the_session_cookie_is_secure_when_told(web_engine):
    engine = web_engine("--cookie-secure")
    assert "Secure" in login_cookie(engine.port)


SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}


def test_every_answer_tells_the_browser_not_to_sniff_nor_frame(web_engine):
    engine = web_engine("--http-max-connections", "3")
    port = engine.port
    answers = {
        path: exchange(port, request("GET", path))
        for path in (
            "/api/v1/sites",
            "/board/demo",
            "/manage/demo",
            "/static/board.js",
            "/nowhere",
            "/api/v1/x",
            "/metrics",
            "/healthz",
            "/api/v1/openapi.json",
        )
    }
    answers["not HTTP"] = exchange(port, b"PROBE\r\n\r\n")
    board = open_stream(port, "/api/v1/sites/demo/stream")
    with (
        socket.create_connection(("127.0.0.1", port), timeout=20),
        socket.create_connection(("127.0.0.1", port), timeout=20),
        socket.create_connection(("127.0.0.1", port), timeout=20) as surplus,
    ):
        answers["over the cap"] = Answer(read_until_closed(surplus))
    board.close()
    assert answers["over the cap"].status == 503
    for what, answer in answers.items():
        for name, value in SAFE_HEADERS.items():
            assert answer.header(name) == value, (what, name, answer.headers)
        assert answer.header("Referrer-Policy") in ("same-origin", "no-referrer"), (what, answer.headers)
