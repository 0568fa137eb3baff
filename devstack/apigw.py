"""An API Gateway HTTP API in front of in-process functions.

Requests become the payload-format-2.0 events AWS sends to a Lambda integration, and the
function's return value becomes the HTTP response the way API Gateway maps it, so handlers see
exactly what they will see on AWS: base64 bodies for form posts, comma-joined repeated headers
and query parameters, cookies lifted out of the headers.
"""

from __future__ import annotations

import re

import base64
import binascii
import json
import logging
import mimetypes
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from infra import spec

from .lambda_runtime import ACCOUNT_ID, Invoker

log = logging.getLogger("devstack.apigw")

API_ID = "sl0local01"
# HTTP APIs refuse request payloads above 10 MB.
MAX_BODY_BYTES = 10 * 1024 * 1024
# Measured on AWS: only these bodies reach the function as text; every other content type,
# a missing one and application/x-www-form-urlencoded included, arrives base64-encoded.
TEXT_MEDIA_TYPES = frozenset({"application/json", "application/xml", "application/javascript"})
HOP_BY_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
     "upgrade"}
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# ---------------------------------------------------------------------------------------------
# Routes


@dataclass(frozen=True)
class RouteBinding:
    """A route (`method` may be `ANY`; `path` may hold `{name}` and a final `{name+}`)."""

    method: str
    path: str
    target: Invoker

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class RouteMatch:
    route_key: str
    target: Invoker
    path_parameters: dict[str, str]


@dataclass(frozen=True)
class _CompiledRoute:
    binding: RouteBinding
    # ("literal", text) | ("param", name) | ("greedy", name)
    segments: tuple[tuple[str, str], ...]

    @property
    def specificity(self) -> tuple[Any, ...]:
        ranks = {"literal": 0, "param": 1, "greedy": 2}
        return (
            tuple(ranks[kind] for kind, _ in self.segments),
            self.binding.method == "ANY",
        )


def _compile(binding: RouteBinding) -> _CompiledRoute:
    segments: list[tuple[str, str]] = []
    parts = binding.path.strip("/").split("/") if binding.path.strip("/") else []
    for index, part in enumerate(parts):
        if part.startswith("{") and part.endswith("+}"):
            if index != len(parts) - 1:
                raise ValueError(f"greedy segment must be last: {binding.path}")
            segments.append(("greedy", part[1:-2]))
        elif part.startswith("{") and part.endswith("}"):
            segments.append(("param", part[1:-1]))
        else:
            segments.append(("literal", part))
    return _CompiledRoute(binding, tuple(segments))


class RouteTable:
    """Picks the most specific route, as HTTP APIs do: literal, then `{param}`, then `{proxy+}`."""

    def __init__(self, bindings: Iterable[RouteBinding]) -> None:
        compiled = [_compile(b) for b in bindings]
        self._routes = sorted(compiled, key=lambda r: r.specificity)

    def __len__(self) -> int:
        return len(self._routes)

    def match(self, method: str, raw_path: str) -> RouteMatch | None:
        stripped = raw_path.strip("/")
        raw_segments = stripped.split("/") if stripped else []
        for route in self._routes:
            if route.binding.method not in (method, "ANY"):
                continue
            params = _match_segments(route.segments, raw_segments)
            if params is not None:
                return RouteMatch(route.binding.route_key, route.binding.target, params)
        return None


def _match_segments(
    template: tuple[tuple[str, str], ...], raw_segments: list[str]
) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for index, (kind, value) in enumerate(template):
        if kind == "greedy":
            rest = raw_segments[index:]
            if not rest or not any(rest):
                return None
            params[value] = unquote("/".join(rest))
            return params
        if index >= len(raw_segments):
            return None
        segment = unquote(raw_segments[index])
        if kind == "literal":
            if segment != value:
                return None
        else:
            if not segment:
                return None
            params[value] = segment
    return params if len(raw_segments) == len(template) else None


def bindings_from_spec(
    functions: Mapping[str, Invoker], spec_functions: Sequence[spec.Function] = spec.FUNCTIONS
) -> list[RouteBinding]:
    """One binding per route in the spec, each to its function's invoker."""
    return [
        RouteBinding(route.method, route.path, functions[function.name])
        for function in spec_functions
        for route in function.routes
    ]


# ---------------------------------------------------------------------------------------------
# Request -> event


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str  # the request-target as sent: path and query
    headers: Sequence[tuple[str, str]]
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    server_port: int = 80
    protocol: str = "HTTP/1.1"

    @property
    def raw_path(self) -> str:
        return urlsplit(self.target).path or "/"

    @property
    def raw_query(self) -> str:
        return urlsplit(self.target).query


_SECRET_OR_PII_PARAMS = frozenset({"api_key", "phone", "to", "from"})
_PHONE_IN_PATH = re.compile(r"(%2B|\+)?\d{7,15}")


def redact_target(target: str) -> str:
    """The request line as the access log keeps it: no API keys or phone numbers."""
    parts = urlsplit(target)
    path = _PHONE_IN_PATH.sub("***", parts.path)
    query = "&".join(
        f"{name}=***" if name.lower() in _SECRET_OR_PII_PARAMS else f"{name}={value}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return f"{path}?{query}" if query else path


def request_id() -> str:
    """An id shaped like API Gateway's (`JKJaXmPLvHcESHA=`)."""
    return base64.b64encode(secrets.token_bytes(10)).decode().replace("+", "A").replace("/", "B")


def is_text_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in TEXT_MEDIA_TYPES


def build_event(
    request: HttpRequest,
    match: RouteMatch,
    *,
    now: datetime | None = None,
    request_id_value: str | None = None,
) -> dict[str, Any]:
    """The payload-format-2.0 event API Gateway sends for `request`."""
    now = now or datetime.now(UTC)
    request_id_value = request_id_value or request_id()

    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        lower = name.lower()
        if lower in HOP_BY_HOP_HEADERS:
            continue
        if lower == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[lower] = f"{headers[lower]},{value}" if lower in headers else value
    forwarded_for = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = (
        f"{forwarded_for}, {request.source_ip}" if forwarded_for else request.source_ip
    )
    headers["x-forwarded-port"] = str(request.server_port)
    headers["x-forwarded-proto"] = "http"
    headers.setdefault(
        "x-amzn-trace-id",
        f"Root=1-{int(now.timestamp()):08x}-{secrets.token_hex(12)}",
    )
    if request.body:
        headers["content-length"] = str(len(request.body))

    domain_name = headers.get("host", f"{API_ID}.execute-api.us-east-1.amazonaws.com")
    time_epoch = int(now.timestamp() * 1000)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    query = _query_parameters(request.raw_query)
    if query:
        event["queryStringParameters"] = query
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": domain_name,
        "domainPrefix": domain_name.split(":", 1)[0].split(".", 1)[0],
        "http": {
            "method": request.method,
            "path": request.raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id_value,
        "routeKey": match.route_key,
        "stage": "$default",
        "time": (
            f"{now:%d}/{_MONTHS[now.month - 1]}/{now:%Y}:{now:%H}:{now:%M}:{now:%S} +0000"
        ),
        "timeEpoch": time_epoch,
    }
    if request.body:
        text = _as_text(request.body) if is_text_media_type(headers.get("content-type")) else None
        if text is None:
            event["body"] = base64.b64encode(request.body).decode("ascii")
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
            event["isBase64Encoded"] = False
    else:
        event["isBase64Encoded"] = False
    return event


def _as_text(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _query_parameters(raw_query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    return params


# ---------------------------------------------------------------------------------------------
# Function result -> response


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class MalformedResponse(ValueError):
    """The function returned something API Gateway cannot turn into a response."""


def json_response(status: int, payload: Any) -> HttpResponse:
    return HttpResponse(
        status, [("Content-Type", "application/json")], json.dumps(payload).encode()
    )


INTERNAL_SERVER_ERROR = {"message": "Internal Server Error"}
NOT_FOUND = {"message": "Not Found"}
TOO_LARGE = {"message": "Request Entity Too Large"}


def response_from_result(payload: Any) -> HttpResponse:
    """Maps a function's (JSON) return value as an HTTP API with payload format 2.0 does."""
    if not (isinstance(payload, dict) and "statusCode" in payload):
        # Without a statusCode, API Gateway assumes a 200 JSON response whose body is the value.
        body = payload if isinstance(payload, str) else json.dumps(payload)
        return HttpResponse(200, [("Content-Type", "application/json")], body.encode())

    status = payload["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode must be an HTTP status, got {status!r}")
    headers: list[tuple[str, str]] = []
    single = payload.get("headers") or {}
    multi = payload.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise MalformedResponse("headers and multiValueHeaders must be objects")
    for name, value in single.items():
        headers.append((name, _header_value(value)))
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedResponse(f"multiValueHeaders[{name!r}] must be a list")
        headers.extend((name, _header_value(v)) for v in values)
    for cookie in payload.get("cookies") or []:
        headers.append(("Set-Cookie", str(cookie)))

    body = payload.get("body")
    if body is None:
        raw = b""
    elif not isinstance(body, str):
        raise MalformedResponse(f"body must be a string, got {type(body).__name__}")
    elif payload.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise MalformedResponse(f"body is not valid base64: {exc}") from exc
    else:
        raw = body.encode("utf-8")
    return HttpResponse(status, headers, raw)


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------------------------
# Static files


class StaticSite:
    """Files under `root` for GET requests no route claims; unknown page paths get index.html.

    The folder may appear after the gateway starts (a dashboard build), so it is looked up on
    every request.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def response(self, raw_path: str) -> HttpResponse | None:
        if not self.root.is_dir():
            return None
        relative = unquote(raw_path).lstrip("/") or "index.html"
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root):
            return None
        if candidate.is_dir():
            candidate = candidate / "index.html"
        if not candidate.is_file():
            if Path(relative).suffix:
                return None
            candidate = self.root / "index.html"
            if not candidate.is_file():
                return None
        content_type = mimetypes.guess_type(candidate.name)[0] or "application/octet-stream"
        return HttpResponse(200, [("Content-Type", content_type)], candidate.read_bytes())


# ---------------------------------------------------------------------------------------------
# The server


class ApiGateway:
    """Binds on construction (so its URL is known before it serves), serves after `start()`."""

    def __init__(
        self,
        bindings: Iterable[RouteBinding],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        static_dir: Path | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.routes = RouteTable(bindings)
        self.static = StaticSite(static_dir) if static_dir else None
        self.max_body_bytes = max_body_bytes
        self._server = _Server((host, port), _make_handler(self))
        bound_host, bound_port = self._server.server_address[:2]
        url_host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        self.port = int(bound_port)
        self.url = f"http://{url_host}:{self.port}"
        self._thread: threading.Thread | None = None
        self._closing = False
        self._in_flight = 0
        self._idle = threading.Condition()

    def start(self) -> str:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="apigw", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self, drain_timeout_s: float = 30) -> None:
        """Stops accepting, lets requests in progress finish, then closes the socket."""
        self._closing = True
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=drain_timeout_s)
        self._server.server_close()

    def handle(self, request: HttpRequest) -> HttpResponse:
        """The gateway's whole job for one request, independent of the socket server."""
        match = self.routes.match(request.method, request.raw_path)
        if match is None:
            if self.static and request.method in ("GET", "HEAD"):
                found = self.static.response(request.raw_path)
                if found is not None:
                    return found
            return json_response(404, NOT_FOUND)
        event = build_event(request, match)
        result = match.target.invoke(event)
        if result.failed:
            return json_response(500, INTERNAL_SERVER_ERROR)
        try:
            response = response_from_result(result.payload)
        except MalformedResponse as exc:
            log.error("%s: malformed function response: %s", match.route_key, exc)
            return json_response(500, INTERNAL_SERVER_ERROR)
        response.headers.append(
            ("apigw-requestid", event["requestContext"]["requestId"])
        )
        return response

    def _enter(self) -> bool:
        with self._idle:
            if self._closing:
                return False
            self._in_flight += 1
            return True

    def _leave(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _make_handler(gateway: ApiGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "devstack-apigw"
        sys_version = ""

        def _serve(self) -> None:
            started = time.monotonic()
            if not gateway._enter():
                self.close_connection = True
                self._send(json_response(503, {"message": "Service Unavailable"}))
                return
            try:
                response = self._respond()
                self._send(response)
                log.info(
                    '%s "%s %s" %d %.0fms',
                    self.client_address[0],
                    self.command,
                    redact_target(self.path),
                    response.status,
                    (time.monotonic() - started) * 1000,
                )
            finally:
                gateway._leave()

        def _respond(self) -> HttpResponse:
            declared = self.headers.get("Content-Length")
            if declared is not None and declared.strip().isdigit():
                length = int(declared)
                if length > gateway.max_body_bytes:
                    self._discard(length)
                    return json_response(413, TOO_LARGE)
                body = self.rfile.read(length) if length else b""
            elif "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                body = self._read_chunked()
                if body is None:
                    return json_response(413, TOO_LARGE)
            else:
                body = b""
            request = HttpRequest(
                method=self.command,
                target=self.path,
                headers=list(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
                server_port=gateway.port,
                protocol=self.request_version,
            )
            try:
                return gateway.handle(request)
            except Exception:
                log.exception("gateway failed on %s %s", self.command, self.path)
                return json_response(500, INTERNAL_SERVER_ERROR)

        def _discard(self, length: int) -> None:
            # Reading what the client sends keeps it from seeing a reset before the 413.
            if length > 4 * gateway.max_body_bytes:
                self.close_connection = True
                return
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)

        def _read_chunked(self) -> bytes | None:
            parts: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunk = self.rfile.read(size)
                self.rfile.read(2)
                total += size
                if total <= gateway.max_body_bytes:
                    parts.append(chunk)
            return b"".join(parts) if total <= gateway.max_body_bytes else None

        def _send(self, response: HttpResponse) -> None:
            self.send_response(response.status)
            names = {name.lower() for name, _ in response.headers}
            for name, value in response.headers:
                if name.lower() in ("content-length", "transfer-encoding", "connection"):
                    continue
                self.send_header(name, value)
            if "date" not in names:
                self.send_header("Date", self.date_time_string())
            self.send_header("Content-Length", str(len(response.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        def send_response(self, code: int, message: str | None = None) -> None:
            # BaseHTTPRequestHandler would add its own Server and Date headers here.
            self.log_request(code)
            self.send_response_only(code, message)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug(format, *args)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    return Handler
