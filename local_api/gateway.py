"""A local API Gateway: template.yaml's HttpApi routes, served by the real handlers.

Each request becomes an HTTP API (payload 2.0) event, built by devtools.events as the
deployed API would send it (path parameters from the route's {param} segments, headers,
cookies, query string, body - base64 when it is not UTF-8) and the handler's answer goes
back as the HTTP response. A path no route matches is a 404, a path that matches only
under other methods a 405 with Allow, both in the contract's error envelope.

Nothing here knows about AWS (local_api/backend.py) or about the process it runs in:
signals, printing and flags (local_api/__main__.py). `Gateway.handle` is a plain function of
a request, so it can be tested without a socket; `GatewayServer` puts it on a port.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from devtools import events
from devtools.context import LambdaContext
from devtools.template import Function, Route

log = logging.getLogger("local_api.gateway")

Handler = Callable[[dict[str, Any], Any], Any]

# API Gateway refuses larger payloads (10 MB) before any function runs.
MAX_BODY_BYTES = 10 * 1024 * 1024
# Framing limits: a chunk-size line (with its extensions) and each trailer line, the
# number of trailer lines, the hex digits of a chunk size (8: up to 4 GB, past the cap).
MAX_LINE_BYTES = 1024
MAX_TRAILERS = 32
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110's token
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit also takes "²" (int() does not)
_CHUNK_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,8})(?:[ \t]*;[^\r\n]*)?\r\n")
_TRAILER_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n]*\r\n")
_PARAMETER = re.compile(r"\{([^{}+]+)(\+?)\}")
_HOP_BY_HOP = {"connection", "content-length", "keep-alive", "transfer-encoding"}
# C0 and C1 controls and DEL, as \xNN: a request line is the client's text, and raw on a
# console an escape sequence would rewrite the screen (ANSI escape injection).
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}


# A tool token is a credential until it expires: the SDK sends it in the query string
# (`?__token=`), and the access line shows it masked.
_TOKEN_IN_QUERY = re.compile(r"([?&](?:__token|token)=)[^&#]*", re.IGNORECASE)


def printable(text: str) -> str:
    """`text` with every control character escaped, fit for a console line."""
    return text.translate(_CONTROLS)


def loggable_path(path: str) -> str:
    """A request target for the access line: tokens masked, control characters escaped."""
    return printable(_TOKEN_IN_QUERY.sub(r"\1***", path))


@dataclass(frozen=True)
class Binding:
    """One route of the template, compiled: which function serves it and how it matches."""

    route: Route
    function: Function
    pattern: re.Pattern[str]
    parameters: tuple[str, ...]
    # Sorts the most specific route first: static segments before {param}, {param} before
    # a greedy {param+}, as API Gateway chooses between routes that both match.
    rank: tuple[int, ...]

    @property
    def route_key(self) -> str:
        return f"{self.route.method} {self.route.path}"


def compile_route(route: Route, function: Function) -> Binding:
    parts, names, rank = [], [], []
    for segment in route.path.strip("/").split("/"):
        match = _PARAMETER.fullmatch(segment)
        if match is None:
            parts.append(re.escape(segment))
            rank.append(0)
        elif match.group(2):
            parts.append("(.+)")
            names.append(match.group(1))
            rank.append(2)
        else:
            parts.append("([^/]+)")
            names.append(match.group(1))
            rank.append(1)
    return Binding(
        route=route,
        function=function,
        pattern=re.compile("/" + "/".join(parts)),
        parameters=tuple(names),
        rank=tuple(rank),
    )


@dataclass(frozen=True)
class Match:
    binding: Binding
    path_parameters: dict[str, str]


@dataclass(frozen=True)
class NoRoute:
    allow: tuple[str, ...] = ()  # empty: 404; otherwise the methods the path has: 405


class RouteTable:
    """Every HttpApi route of the given functions, as the template declares them."""

    def __init__(self, functions: Iterable[Function]) -> None:
        self.bindings = tuple(
            compile_route(route, function) for function in functions for route in function.routes
        )
        seen: dict[str, str] = {}
        for binding in self.bindings:
            owner = seen.setdefault(binding.route_key, binding.function.logical_id)
            if owner != binding.function.logical_id:
                raise ValueError(
                    f"route {binding.route_key} is declared by both {owner} "
                    f"and {binding.function.logical_id}"
                )

    def resolve(self, method: str, raw_path: str) -> Match | NoRoute:
        matching = [
            (binding, found)
            for binding in self.bindings
            if (found := binding.pattern.fullmatch(raw_path)) is not None
        ]
        if not matching:
            return NoRoute()
        served = [(b, found) for b, found in matching if b.route.method in (method, "ANY")]
        if not served:
            return NoRoute(allow=tuple(sorted({b.route.method for b, _ in matching})))
        binding, found = min(served, key=lambda pair: (pair[0].rank, pair[0].route.method == "ANY"))
        # API Gateway hands the function decoded values; the route matched the raw path,
        # so an encoded "/" (%2F) stays inside its segment.
        values = zip(binding.parameters, found.groups(), strict=True)
        return Match(binding, {name: unquote(value) for name, value in values})


@dataclass
class Request:
    method: str
    target: str  # the request-target as sent: /path?query
    headers: list[tuple[str, str]]
    body: bytes
    client_ip: str = "127.0.0.1"


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    function: str | None = None  # the logical id of the function that answered
    request_id: str = ""

    @classmethod
    def error(
        cls, status: int, code: str, message: str, headers: Iterable[tuple[str, str]] = ()
    ) -> Response:
        """The contract's error envelope: {"error": {"code", "message"}}."""
        envelope = {"error": {"code": code, "message": message}}
        body = json.dumps(envelope, separators=(",", ":")).encode()
        return cls(status, [("Content-Type", "application/json"), *headers], body)


@dataclass
class Gateway:
    """Routes a request to its function and runs the function's handler."""

    routes: RouteTable
    handlers: Mapping[str, Handler]  # logical id -> handler(event, context)
    # Fixed JSON documents served under GET beside the API (the OpenAPI document):
    # path -> body. Not routes of the template: no function, no event.
    documents: Mapping[str, bytes] = field(default_factory=dict)

    def handle(self, request: Request) -> Response:
        raw_path, raw_query = _split_target(request.target)
        if raw_path in self.documents:
            if request.method not in ("GET", "HEAD"):
                message = f"{raw_path} accepts GET, not {request.method}"
                return Response.error(405, "method_not_allowed", message, [("Allow", "GET")])
            return Response(200, [("Content-Type", "application/json")], self.documents[raw_path])
        resolved = self.routes.resolve(request.method, raw_path)
        if isinstance(resolved, NoRoute):
            if not resolved.allow:
                return Response.error(404, "not_found", f"no route for {raw_path}")
            allow = ", ".join(resolved.allow)
            return Response.error(
                405,
                "method_not_allowed",
                f"{raw_path} accepts {allow}, not {request.method}",
                [("Allow", allow)],
            )
        binding = resolved.binding
        event = _event(request, resolved, raw_path, raw_query)
        request_id = event["requestContext"]["requestId"]
        # The function's own Timeout (template.yaml): the layer's time budget reads it.
        context = LambdaContext.for_function(binding.function, binding.function.logical_id)
        try:
            result = self.handlers[binding.function.logical_id](event, context)
            response = _http_response(result)
        except Exception:
            # The handler's own bug: API Gateway answers 500 and the log tells why.
            log.exception("%s raised on %s", binding.function.logical_id, binding.route_key)
            response = Response.error(
                500,
                "internal_error",
                f"{binding.function.logical_id} failed; see the local API's console",
            )
        response.function = binding.function.logical_id
        response.request_id = request_id
        response.headers.append(("apigw-requestid", request_id))
        return response


def _split_target(target: str) -> tuple[str, str]:
    """The raw path and raw query string of a request-target (origin or absolute form)."""
    if not target.startswith("/"):
        parts = urlsplit(target)  # http://host/path?query, as a proxy would send it
        return parts.path or "/", parts.query
    path, _, query = target.partition("?")  # not urlsplit: it reads "//x/y" as host x
    return path, query.partition("#")[0]


def _event(request: Request, match: Match, raw_path: str, raw_query: str) -> dict[str, Any]:
    """The payload 2.0 event API Gateway would send for this request."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        name = name.lower()
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
        elif name in headers:
            headers[name] = f"{headers[name]},{value}"
        else:
            headers[name] = value
    binding = match.binding
    return events.http_api_event(
        request.method,
        binding.route.path,
        match.path_parameters,
        request.body or None,
        headers=headers,
        default_headers=False,
        raw_path=raw_path,
        raw_query=raw_query,
        route_key=binding.route_key,
        cookies=cookies,
        source_ip=request.client_ip,
    )


def _http_response(result: Any) -> Response:
    """A Lambda proxy result as HTTP. With payload 2.0 a result without statusCode is the
    body itself, sent as JSON with 200 (API Gateway's "inferred" response format)."""
    if not (isinstance(result, dict) and "statusCode" in result):
        inferred = json.dumps(result, separators=(",", ":")).encode()
        return Response(200, [("Content-Type", "application/json")], inferred)
    status = int(result["statusCode"])
    if not 100 <= status <= 599:
        raise ValueError(f"statusCode {status} is not an HTTP status")
    headers = [
        (str(name), str(value))
        for name, value in (result.get("headers") or {}).items()
        if str(name).lower() not in _HOP_BY_HOP
    ]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if str(name).lower() not in _HOP_BY_HOP:
            headers.extend((str(name), str(value)) for value in values)
    headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or ())
    body = result.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        raise TypeError(f"the body must be a string, not {type(body).__name__}")
    elif result.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except binascii.Error as error:
            raise ValueError("isBase64Encoded, but the body is not base64") from error
    else:
        data = body.encode("utf-8")
    return Response(status, headers, data)


# -- HTTP ------------------------------------------------------------------------------


class _BodyError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.response = Response.error(status, code, message)


def _too_large() -> _BodyError:
    return _BodyError(413, "payload_too_large", f"the body exceeds {MAX_BODY_BYTES} bytes")


class _RequestHandler(BaseHTTPRequestHandler):
    """One connection: HTTP/1.1 keep-alive, each request handed to the gateway."""

    server: GatewayServer
    protocol_version = "HTTP/1.1"
    server_version = "local-api"
    # Headers and body go out in two writes; with Nagle's algorithm the second waits for
    # the client's delayed ACK, ~40 ms per keep-alive request.
    disable_nagle_algorithm = True
    timeout = 60  # an idle keep-alive connection is closed after this many seconds
    # From a request's first byte, the request line and headers must all arrive within
    # this: the socket timeout above bounds each wait, not a client that trickles a byte
    # at a time (each thread it holds is a connection nobody else gets).
    head_timeout = 10.0

    def setup(self) -> None:
        super().setup()
        self._head_expired = threading.Event()
        self._head_timer: threading.Timer | None = None

    def handle_one_request(self) -> None:
        try:
            waiting = self.rfile.peek(1)  # type: ignore[attr-defined]
        except (TimeoutError, ConnectionError):
            waiting = b""
        if not waiting:  # idle past `timeout`, or the client closed: nothing to answer
            self.close_connection = True
            return
        self._head_timer = threading.Timer(self.head_timeout, self._head_too_slow)
        self._head_timer.daemon = True
        self._head_timer.start()
        try:
            super().handle_one_request()
        finally:
            self._head_timer.cancel()

    def _head_too_slow(self) -> None:
        """Wake the read that waits for the rest of the head (it then sees end of file)."""
        self._head_expired.set()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RD)

    def parse_request(self) -> bool:
        if not self._head_expired.is_set():
            parsed = super().parse_request()
            if self._head_timer is not None:
                self._head_timer.cancel()
            if not parsed or not self._head_expired.is_set():
                return parsed  # answered (a malformed head), or whole in time
        # A head cut short by the deadline: answer what happened, not what was misread.
        self.request_version = self.protocol_version
        self.close_connection = True
        self.send_error(408, f"the request head did not arrive within {self.head_timeout:g} s")
        return False

    def _serve(self) -> None:
        started = time.perf_counter()
        if not self.server.enter():
            response = Response.error(
                503, "shutting_down", "the local API is stopping", [("Retry-After", "1")]
            )
            self.close_connection = True
        else:
            try:
                if not _METHOD.fullmatch(self.command):
                    raise _BodyError(400, "invalid_request", "the method is not an HTTP token")
                body = self._read_body()
                host, _port = self.client_address[:2]
                response = self.server.gateway.handle(
                    Request(self.command, self.path, list(self.headers.items()), body, host)
                )
            except _BodyError as error:
                # The rest of the body was not read: this connection cannot carry another.
                response, self.close_connection = error.response, True
            finally:
                self.server.leave()
        self._send(response)
        log.info(
            "%s %s -> %d %s %.1f ms",
            printable(self.command),
            loggable_path(self.path),
            response.status,
            response.function or "-",
            (time.perf_counter() - started) * 1000,
        )

    def __getattr__(self, name: str) -> Any:
        """Every method reaches the gateway, which answers 405 with Allow for a method the
        path has no route for (TRACE, FOO), as API Gateway does; http.server would send 501
        for any method without a do_ function."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _read_body(self) -> bytes:
        """The body, framed strictly: one Content-Length of ASCII digits (or identical
        duplicates), or Transfer-Encoding: chunked alone; never both (a proxy in front
        could read the other one: request smuggling)."""
        lengths = self.headers.get_all("Content-Length") or []
        encodings = self.headers.get_all("Transfer-Encoding") or []
        if lengths and encodings:
            raise _BodyError(
                400, "invalid_request", "Content-Length and Transfer-Encoding are exclusive"
            )
        if encodings:
            codings = [c.strip(" \t").lower() for value in encodings for c in value.split(",")]
            if codings != ["chunked"]:
                raise _BodyError(
                    400, "invalid_request", "the only Transfer-Encoding accepted is chunked"
                )
            return self._read_chunked()
        if not lengths:
            return b""
        values = {member.strip(" \t") for value in lengths for member in value.split(",")}
        if len(values) != 1:
            raise _BodyError(400, "invalid_request", "Content-Length values differ")
        (value,) = values
        if not _DIGITS.fullmatch(value):
            raise _BodyError(400, "invalid_request", "Content-Length is not a number")
        digits = value.lstrip("0") or "0"
        # The length test first: int() refuses strings of more than 4,300 digits.
        if len(digits) > len(str(MAX_BODY_BYTES)) or int(digits) > MAX_BODY_BYTES:
            raise _too_large()
        size = int(digits)
        body = self.rfile.read(size)
        if len(body) != size:
            raise _BodyError(400, "invalid_request", "the body is shorter than Content-Length")
        return body

    def _read_chunked(self) -> bytes:
        chunks, total = [], 0
        while True:  # bounded: every pass reads at least one line, the total is capped
            match = _CHUNK_SIZE_LINE.fullmatch(self._line())
            if match is None:
                raise _BodyError(400, "invalid_request", "malformed chunk size line")
            size = int(match.group(1), 16)
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                raise _too_large()
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.read(2) != b"\r\n":
                raise _BodyError(400, "invalid_request", "a chunk does not match its size")
            chunks.append(chunk)
        for _ in range(MAX_TRAILERS + 1):  # trailers (ignored, as API Gateway does)
            line = self._line()
            if line == b"\r\n":
                return b"".join(chunks)
            if not _TRAILER_LINE.fullmatch(line):
                raise _BodyError(400, "invalid_request", "malformed trailer")
        raise _BodyError(400, "invalid_request", f"more than {MAX_TRAILERS} trailers")

    def _line(self) -> bytes:
        line = self.rfile.readline(MAX_LINE_BYTES + 1)
        if len(line) > MAX_LINE_BYTES:
            raise _BodyError(
                400, "invalid_request", f"a chunked body line exceeds {MAX_LINE_BYTES} bytes"
            )
        return line

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors (a malformed request line, an unknown method, a header too long)
        in the error envelope too, instead of http.server's HTML page."""
        short = self.responses.get(code, ("error",))[0]
        name = "invalid_request" if code == 400 else re.sub(r"\W+", "_", short.lower()).strip("_")
        self.close_connection = True
        self._send(Response.error(code, name, message or short))

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _serve logs each request once, with its function and duration

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), printable(format % args))


class GatewayServer(ThreadingHTTPServer):
    """The gateway on 127.0.0.1, one thread per connection.

    `stop()` stops accepting, lets the requests in flight finish (bounded) and closes the
    idle keep-alive connections, so whatever backs the handlers can be torn down after it.
    """

    daemon_threads = True  # an idle keep-alive connection never holds the process up
    # socketserver's default backlog (5) drops the SYNs of a burst of new connections, and
    # each dropped client waits a whole second to retry.
    request_queue_size = 128

    def __init__(self, gateway: Gateway, port: int, host: str = "127.0.0.1") -> None:
        super().__init__((host, port), _RequestHandler)
        self.gateway = gateway
        self._state = threading.Condition()
        self._in_flight = 0
        self._closing = False
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        # An AF_INET server's address is (str, int); typeshed allows bytes for AF_UNIX ones.
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}"

    def start(self) -> GatewayServer:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.2}, name="local-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, drain_secs: float = 10.0) -> None:
        with self._state:
            self._closing = True
        if self._thread is not None:
            self.shutdown()  # returns once serve_forever has stopped accepting
            self._thread.join(timeout=drain_secs)
            self._thread = None
        self.server_close()
        with self._state:
            self._state.wait_for(lambda: self._in_flight == 0, timeout=drain_secs)
            idle = list(self._connections)
        for connection in idle:
            with contextlib.suppress(OSError):  # already closed by its client
                connection.shutdown(socket.SHUT_RDWR)

    def enter(self) -> bool:
        """A request starts; False when the server is stopping and must refuse it."""
        with self._state:
            if self._closing:
                return False
            self._in_flight += 1
            return True

    def leave(self) -> None:
        with self._state:
            self._in_flight -= 1
            self._state.notify_all()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._state:
            self._connections.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer is routine; anything else is worth a trace."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            log.debug("connection from %s dropped", client_address)
        else:
            log.exception("error while serving %s", client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._state:
            self._connections.discard(request)
        super().shutdown_request(request)
