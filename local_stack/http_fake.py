"""Shared machinery of the local fake services: JSON replies, fault queue, stats, admin API.

Every fake is a ``FakeService`` served by a ``FakeHTTPServer`` (the standard library's
``ThreadingHTTPServer``). Besides its own routes, every fake serves:

- ``POST /__admin/faults`` ``{"faults": [Fault, ...]}``: queue faults; each is consumed, in
  order, by the next request to one of the fake's real endpoints (``path`` narrows it).
- ``GET /__admin/faults``: the faults still pending.
- ``POST /__admin/reset``: drop faults, stats, fake-specific state; restore the start config.
- ``GET /__admin/stats``: request counters plus what the fake measures.
- ``GET|POST /__admin/config``: read or partly update the runtime config.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import signal
import threading
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
ADMIN_PREFIX = "/__admin/"
# Bodies above this are refused before reading: no fake has a larger limit to check.
MAX_READ_BYTES = 64 * 1024 * 1024
SERVE_POLL_INTERVAL_S = 0.05
MALFORMED_BODY = b'{"truncated": "this is not JSON'
BASE_FAULT_KINDS = frozenset({"status", "timeout", "malformed"})


class Fault(BaseModel):
    """One injected failure: an error status, a delay, a broken body, or a fake-specific kind.

    ``status``: answer ``status`` with the fake's own error (``body``/``headers`` override it);
    ``timeout``: sleep ``seconds``, then answer normally; ``malformed``: 200 with a truncated
    JSON body. ``count`` queues it that many times; ``path`` limits it to one request path.
    """

    model_config = ConfigDict(extra="forbid")

    kind: str = "status"
    status: int | None = Field(default=None, ge=100, le=599)
    body: JsonValue | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    seconds: float | None = Field(default=None, gt=0)
    count: int = Field(default=1, ge=1, le=10_000)
    path: str | None = None

    @model_validator(mode="after")
    def _fields_match_kind(self) -> Self:
        is_status = self.kind == "status"
        if is_status != (self.status is not None):
            raise ValueError("'status' is required for, and only for, kind 'status'")
        if not is_status and (self.body is not None or self.headers):
            raise ValueError("'body' and 'headers' only apply to kind 'status'")
        if (self.kind == "timeout") != (self.seconds is not None):
            raise ValueError("'seconds' is required for, and only for, kind 'timeout'")
        return self


class FaultBatch(BaseModel):
    """The body of ``POST /__admin/faults``."""

    model_config = ConfigDict(extra="forbid")

    faults: list[Fault] = Field(min_length=1)


class FaultQueue:
    """Thread-safe FIFO of faults; ``count`` is expanded into single faults on arrival."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()

    def extend(self, faults: Iterable[Fault]) -> int:
        """Queue the faults and return how many are pending."""
        with self._lock:
            for fault in faults:
                single = fault.model_copy(update={"count": 1})
                self._faults.extend(single for _ in range(fault.count))
            return len(self._faults)

    def pop(self, path: str) -> Fault | None:
        """Remove and return the first fault that applies to ``path``."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.path is None or fault.path == path:
                    del self._faults[index]
                    return fault
            return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


class RequestStats:
    """Thread-safe counters of the requests a fake served (admin requests excluded)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._by_path: Counter[str] = Counter()
            self._by_status: Counter[int] = Counter()
            self._faults_applied = 0
            self._in_flight = 0
            self._max_in_flight = 0

    def begin(self, path: str) -> None:
        with self._lock:
            self._requests += 1
            self._by_path[path] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def end(self, status: int) -> None:
        with self._lock:
            self._in_flight -= 1
            self._by_status[status] += 1

    def fault_applied(self) -> None:
        with self._lock:
            self._faults_applied += 1

    def snapshot(self) -> dict[str, JsonValue]:
        with self._lock:
            return {
                "requests": self._requests,
                "by_path": dict(self._by_path),
                "by_status": {str(status): n for status, n in sorted(self._by_status.items())},
                "faults_applied": self._faults_applied,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
            }


@dataclass(frozen=True)
class Request:
    """One HTTP request, fully read."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    request_id: str = field(default_factory=lambda: secrets.token_hex(12))

    def header(self, name: str) -> str | None:
        """A header value (case-insensitive name), None when absent."""
        value = self.headers.get(name)
        return None if value is None else str(value)

    def query_value(self, name: str) -> str | None:
        """The first value of a query parameter, None when absent."""
        values = self.query.get(name)
        return values[0] if values else None

    def media_type(self) -> str:
        """The Content-Type without parameters, lower-cased ('' when absent)."""
        return (self.header("Content-Type") or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(
    status: int, payload: JsonValue, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON reply (UTF-8, non-ASCII kept as is)."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    return Response(status, body, {"Content-Type": "application/json", **(headers or {})})


def validation_message(exc: ValidationError) -> str:
    """A one-line message per error: ``loc.path: message``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors()
    )


ConfigT = TypeVar("ConfigT", bound=BaseModel)


class FakeService(ABC, Generic[ConfigT]):
    """A fake HTTP service: its routes, runtime config, fault queue and stats."""

    name: ClassVar[str]
    extra_fault_kinds: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: ConfigT) -> None:
        self._start_config = config
        self._config = config
        self._config_lock = threading.Lock()
        self.faults = FaultQueue()
        self.stats = RequestStats()
        self.stopping = threading.Event()

    @property
    def config(self) -> ConfigT:
        with self._config_lock:
            return self._config

    def update_config(self, changes: Mapping[str, Any]) -> ConfigT:
        """Validate ``changes`` over the current config and make it current."""
        with self._config_lock:
            merged = {**self._config.model_dump(), **changes}
            self._config = type(self._config).model_validate(merged)
            return self._config

    def sleep(self, seconds: float) -> None:
        """Wait, but wake up at once when the server stops."""
        if seconds > 0:
            self.stopping.wait(seconds)

    def handle(self, request: Request) -> Response:
        """Answer one request: the admin API, or a real endpoint with faults applied."""
        if request.path.startswith(ADMIN_PREFIX):
            return self._admin(request)
        self.stats.begin(request.path)
        status = 500
        try:
            response = self.decorate(request, self._serve(request))
            status = response.status
            return response
        finally:
            self.stats.end(status)

    def _serve(self, request: Request) -> Response:
        fault = self.faults.pop(request.path) if self.accepts_faults(request) else None
        if fault is None:
            return self.route(request, None)
        self.stats.fault_applied()
        self.on_fault(request, fault)
        if fault.kind == "status":
            return self.fault_response(request, fault)
        if fault.kind == "malformed":
            return Response(200, MALFORMED_BODY, {"Content-Type": "application/json"})
        if fault.kind == "timeout":
            self.sleep(fault.seconds or 0.0)
            return self.route(request, None)
        return self.route(request, fault)

    def fault_response(self, request: Request, fault: Fault) -> Response:
        """The reply to a status fault: the fake's own error for that status, overridable."""
        status = fault.status or 500
        default = self.error_response(request, status)
        body = (
            default.body
            if fault.body is None
            else json.dumps(fault.body, ensure_ascii=False).encode()
        )
        return Response(status, body, {**default.headers, **fault.headers})

    @abstractmethod
    def accepts_faults(self, request: Request) -> bool:
        """Whether the request is to one of the real endpoints that faults apply to."""

    @abstractmethod
    def route(self, request: Request, fault: Fault | None) -> Response:
        """Answer a request; ``fault`` is a pending fake-specific fault kind, if any."""

    @abstractmethod
    def error_response(self, request: Request, status: int) -> Response:
        """The fake's ordinary error reply for ``status`` (used by status faults)."""

    def on_fault(self, request: Request, fault: Fault) -> None:
        """Hook: note that ``fault`` is being applied to ``request``."""

    def decorate(self, request: Request, response: Response) -> Response:
        """Hook: add what every non-admin reply carries (e.g. a request id header)."""
        return response

    def extra_stats(self) -> dict[str, JsonValue]:
        """Hook: fake-specific figures for ``GET /__admin/stats``."""
        return {}

    def reset_state(self) -> None:
        """Hook: forget fake-specific state on ``POST /__admin/reset``."""

    def _admin(self, request: Request) -> Response:
        endpoint = (request.method, request.path.removeprefix(ADMIN_PREFIX).rstrip("/"))
        try:
            match endpoint:
                case ("POST", "faults"):
                    return self._add_faults(request)
                case ("GET", "faults"):
                    return json_response(
                        200, {"faults": [f.model_dump(mode="json") for f in self.faults.pending()]}
                    )
                case ("POST", "reset"):
                    self.faults.clear()
                    self.stats.reset()
                    with self._config_lock:
                        self._config = self._start_config
                    self.reset_state()
                    return json_response(200, {"reset": True})
                case ("GET", "stats"):
                    stats = self.stats.snapshot()
                    stats["faults_pending"] = len(self.faults.pending())
                    return json_response(200, {**stats, **self.extra_stats()})
                case ("GET", "config"):
                    return json_response(200, self.config.model_dump(mode="json"))
                case ("POST", "config"):
                    changes = _json_object(request.body)
                    return json_response(200, self.update_config(changes).model_dump(mode="json"))
        except ValidationError as exc:
            return json_response(400, {"detail": validation_message(exc)})
        except ValueError as exc:
            return json_response(400, {"detail": str(exc)})
        return json_response(404, {"detail": f"no admin endpoint {request.method} {request.path}"})

    def _add_faults(self, request: Request) -> Response:
        batch = FaultBatch.model_validate(_json_object(request.body))
        allowed = BASE_FAULT_KINDS | self.extra_fault_kinds
        unknown = sorted({f.kind for f in batch.faults} - allowed)
        if unknown:
            raise ValueError(
                f"unknown fault kind(s) {unknown}; {self.name} knows {sorted(allowed)}"
            )
        return json_response(200, {"pending": self.faults.extend(batch.faults)})


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body or b"{}")
    except ValueError as exc:
        raise ValueError(f"body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ValueError("body must be a JSON object")
    return payload


ServiceT = TypeVar("ServiceT", bound=FakeService[Any])


class _RequestTooLarge(Exception):
    """The request body exceeds MAX_READ_BYTES."""


class _FakeRequestHandler(BaseHTTPRequestHandler):
    """Reads a request (Content-Length or chunked), hands it to the service, writes the reply."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, each reply waits ~40 ms.
    disable_nagle_algorithm = True
    server: FakeHTTPServer[Any]

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except _RequestTooLarge:
            self.close_connection = True
            self._write(json_response(413, {"detail": "request body too large"}))
            return
        except ValueError as exc:
            self.close_connection = True
            self._write(json_response(400, {"detail": f"bad request framing: {exc}"}))
            return
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
        )
        try:
            response = self.server.service.handle(request)
        except Exception:
            logger.exception("%s failed on %s %s", self.server.service.name, self.command, url.path)
            response = json_response(500, {"detail": "the fake crashed; see its log"})
        self._write(response)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > MAX_READ_BYTES:
            raise _RequestTooLarge
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self.rfile.readline().strip():  # trailers end with an empty line
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_READ_BYTES:
                raise _RequestTooLarge
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _write(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. its timeout fired during a timeout fault).
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s: " + format, self.server.service.name, *args)


class FakeHTTPServer(ThreadingHTTPServer, Generic[ServiceT]):
    """A threading HTTP server bound to one fake service."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, service: ServiceT, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self.service = service
        super().__init__((host, port), _FakeRequestHandler)

    @property
    def host(self) -> str:
        return str(self.socket.getsockname()[0])

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Wake sleeping handlers, stop serving and close the socket."""
        self.service.stopping.set()
        self.shutdown()
        self.server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug(
            "%s: connection error from %s", self.service.name, client_address, exc_info=True
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_server(
    service: ServiceT, *, host: str = DEFAULT_HOST, port: int = 0
) -> FakeHTTPServer[ServiceT]:
    """Serve ``service`` from a daemon thread; port 0 picks a free port (see ``.url``)."""
    server = FakeHTTPServer(service, host, port)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": SERVE_POLL_INTERVAL_S},
        name=f"{service.name}-{server.port}",
        daemon=True,
    )
    thread.start()
    return server


def cli_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the flags every fake takes (--host, --port)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    return parser


def serve_until_signalled(service: FakeService[Any], *, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM; print ``listening on <url>`` once ready."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    server = start_server(service, host=host, port=port)
    print(f"listening on {server.url}", flush=True)
    stop.wait()
    server.stop()
