"""Shared machinery of the local fakes: faults, stats, the admin API, and serving them.

A fake has three parts: its *schema* (the vendor's request models and error bodies), its
*behaviour* (a ``FakeService``: runtime config, latency, what to answer, its own fault
kinds) and its *service* (a FastAPI app, started from ``fake_app``, whose routes validate
requests with the schema and call the behaviour). ``fake_app`` gives every fake:

- ``POST /__admin/faults`` ``{"faults": [Fault, ...]}``: queue faults; each is consumed, in
  order, by the next request to one of the fake's real endpoints (``path`` narrows it).
- ``GET /__admin/faults``: the faults still pending.
- ``POST /__admin/reset``: drop faults, stats, fake-specific state; restore the start config.
- ``GET /__admin/stats``: request counters plus what the fake measures.
- ``GET|POST /__admin/config``: read or partly update the runtime config.
- ``GET /__admin/docs``: the fake's OpenAPI documentation (outside the vendor's paths).

Faults are applied, and requests counted, by a middleware before the fake's own checks (a
status fault answers even a request the fake would refuse). An unknown path or method and
a request the schema refuses are answered with the vendor's error bodies (the behaviour's
``not_found`` and ``invalid`` hooks), never with FastAPI's own.

``start_server`` serves a fake on uvicorn from a thread (tests); ``serve_main`` is the
command line of every fake (the local stack runs each as a process).
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import signal
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar
from urllib.parse import parse_qs

import anyio.to_thread
import uvicorn
from fastapi import APIRouter, Depends, FastAPI
from fastapi import Request as AsgiRequest
from fastapi import Response as AsgiResponse
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator
from starlette.exceptions import HTTPException

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
ADMIN_PREFIX = "/__admin"
MALFORMED_BODY = b'{"truncated": "this is not JSON'
BASE_FAULT_KINDS = frozenset({"status", "timeout", "malformed"})
# Endpoints are plain functions run in worker threads (they sleep and run ffprobe); the
# benchmarks keep more requests in flight than anyio's default of 40 threads.
MAX_CONCURRENT_REQUESTS = 256
STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
# In-flight requests get this long to finish once the server stops (sleeps wake at once).
GRACEFUL_SHUTDOWN_S = 1


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
    """One HTTP request as the behaviour sees it: fully read, independent of the server."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # case-insensitive names
    body: bytes
    request_id: str = field(default_factory=lambda: secrets.token_hex(12))

    def header(self, name: str) -> str | None:
        """A header value (case-insensitive name), None when absent."""
        return self.headers.get(name)

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


class Refused(Exception):
    """Raised by a behaviour to answer the request with one of the vendor's error replies."""

    def __init__(self, response: Response, detail: str = "") -> None:
        super().__init__(detail or f"refused with {response.status}")
        self.response = response


def json_response(
    status: int, payload: JsonValue, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON reply (UTF-8, non-ASCII kept as is)."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    return Response(status, body, {"Content-Type": "application/json", **(headers or {})})


def validation_message(errors: Sequence[Mapping[str, Any]]) -> str:
    """One line per pydantic error, ``loc.path: message`` (FastAPI's ``body`` prefix dropped)."""
    lines = []
    for error in errors:
        loc = list(error.get("loc", ()))
        if loc[:1] == ["body"]:
            loc = loc[1:]
        lines.append(f"{'.'.join(str(part) for part in loc) or 'body'}: {error['msg']}")
    return "; ".join(lines)


def is_json_error(errors: Sequence[Mapping[str, Any]]) -> bool:
    """Whether FastAPI refused the body because it is not JSON at all."""
    return any(error.get("type") == "json_invalid" for error in errors)


ConfigT = TypeVar("ConfigT", bound=BaseModel)


class FakeService(ABC, Generic[ConfigT]):
    """A fake's behaviour: its runtime config, fault queue, stats and answers."""

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

    def reset(self) -> None:
        """Drop faults, stats and fake-specific state; restore the start config."""
        self.faults.clear()
        self.stats.reset()
        with self._config_lock:
            self._config = self._start_config
        self.reset_state()

    def sleep(self, seconds: float) -> None:
        """Wait, but wake up at once when the server stops."""
        if seconds > 0:
            self.stopping.wait(seconds)

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

    def add_faults(self, batch: FaultBatch) -> int:
        """Queue a batch of faults of kinds this fake knows; returns how many are pending."""
        allowed = BASE_FAULT_KINDS | self.extra_fault_kinds
        unknown = sorted({f.kind for f in batch.faults} - allowed)
        if unknown:
            raise ValueError(
                f"unknown fault kind(s) {unknown}; {self.name} knows {sorted(allowed)}"
            )
        return self.faults.extend(batch.faults)

    @abstractmethod
    def create_app(self) -> FastAPI:
        """The fake's ASGI service (its routes over ``fake_app``)."""

    @abstractmethod
    def accepts_faults(self, method: str, path: str) -> bool:
        """Whether the request is to one of the real endpoints that faults apply to."""

    @abstractmethod
    def error_response(self, request: Request, status: int) -> Response:
        """The fake's ordinary error reply for ``status`` (used by status faults)."""

    def not_found(self, request: Request) -> Response:
        """The reply to a path or method the vendor does not serve."""
        return self.error_response(request, 404)

    def invalid(self, request: Request, errors: Sequence[Mapping[str, Any]]) -> Response:
        """The reply to a request its route's schema refuses (pydantic ``errors``)."""
        return self.error_response(request, 400)

    def on_fault(self, request: Request, fault: Fault) -> None:
        """Hook: note that ``fault`` is being applied to ``request``."""

    def reply_headers(self, request: Request) -> dict[str, str]:
        """Hook: headers every non-admin reply carries (e.g. a request id)."""
        return {}

    def extra_stats(self) -> dict[str, JsonValue]:
        """Hook: fake-specific figures for ``GET /__admin/stats``."""
        return {}

    def reset_state(self) -> None:
        """Hook: forget fake-specific state on ``POST /__admin/reset``."""


ServiceT = TypeVar("ServiceT", bound=FakeService[Any])


def to_asgi(response: Response) -> AsgiResponse:
    return AsgiResponse(response.body, status_code=response.status, headers=response.headers)


async def read_request(request: AsgiRequest) -> Request:
    """The behaviour's view of a request (its body read; the id the middleware gave it)."""
    request_id = getattr(request.state, "request_id", None) or secrets.token_hex(12)
    request.state.request_id = request_id
    return Request(
        method=request.method,
        path=request.url.path,
        query=parse_qs(request.url.query, keep_blank_values=True),
        headers=request.headers,
        body=await request.body(),
        request_id=request_id,
    )


def pending_fault(request: AsgiRequest) -> Fault | None:
    """The fake-specific fault the middleware left for this request's endpoint, if any."""
    fault = getattr(request.state, "fault", None)
    return fault if isinstance(fault, Fault) else None


FakeRequest = Annotated[Request, Depends(read_request)]
PendingFault = Annotated[Fault | None, Depends(pending_fault)]


def _admin_router(service: FakeService[Any]) -> APIRouter:
    admin = APIRouter(prefix=ADMIN_PREFIX, tags=["admin"])

    @admin.post("/faults")
    def add_faults(batch: FaultBatch) -> dict[str, JsonValue]:
        try:
            return {"pending": service.add_faults(batch)}
        except ValueError as exc:
            raise Refused(json_response(400, {"detail": str(exc)})) from exc

    @admin.get("/faults")
    def list_faults() -> dict[str, JsonValue]:
        return {"faults": [fault.model_dump(mode="json") for fault in service.faults.pending()]}

    @admin.post("/reset")
    def reset() -> dict[str, JsonValue]:
        service.reset()
        return {"reset": True}

    @admin.get("/stats")
    def stats() -> dict[str, JsonValue]:
        snapshot = service.stats.snapshot()
        snapshot["faults_pending"] = len(service.faults.pending())
        return {**snapshot, **service.extra_stats()}

    @admin.get("/config")
    def read_config() -> dict[str, Any]:
        config: dict[str, Any] = service.config.model_dump(mode="json")
        return config

    @admin.post("/config")
    def update_config(changes: dict[str, JsonValue]) -> dict[str, Any]:
        try:
            config: dict[str, Any] = service.update_config(changes).model_dump(mode="json")
        except ValidationError as exc:
            raise Refused(json_response(400, {"detail": validation_message(exc.errors())})) from exc
        return config

    return admin


def _is_admin(request: AsgiRequest) -> bool:
    return request.url.path.startswith(ADMIN_PREFIX + "/")


def _middleware(
    service: FakeService[Any],
) -> Callable[
    [AsgiRequest, Callable[[AsgiRequest], Awaitable[AsgiResponse]]], Awaitable[AsgiResponse]
]:
    async def faults_and_stats(
        request: AsgiRequest, call_next: Callable[[AsgiRequest], Awaitable[AsgiResponse]]
    ) -> AsgiResponse:
        """Count the request, apply a pending fault, add the fake's reply headers."""
        if _is_admin(request):
            return await call_next(request)
        path = request.url.path
        service.stats.begin(path)
        status = 500
        try:
            seen = await read_request(request)
            fault = (
                service.faults.pop(path) if service.accepts_faults(request.method, path) else None
            )
            if fault is None:
                response = await call_next(request)
            else:
                response = await _apply(service, request, seen, fault, call_next)
            response.headers.update(service.reply_headers(seen))
            status = response.status_code
            return response
        finally:
            service.stats.end(status)

    return faults_and_stats


async def _apply(
    service: FakeService[Any],
    request: AsgiRequest,
    seen: Request,
    fault: Fault,
    call_next: Callable[[AsgiRequest], Awaitable[AsgiResponse]],
) -> AsgiResponse:
    service.stats.fault_applied()
    service.on_fault(seen, fault)
    if fault.kind == "status":
        return to_asgi(service.fault_response(seen, fault))
    if fault.kind == "malformed":
        return to_asgi(Response(200, MALFORMED_BODY, {"Content-Type": "application/json"}))
    if fault.kind == "timeout":
        await anyio.to_thread.run_sync(service.sleep, fault.seconds or 0.0)
    else:
        request.state.fault = fault
    return await call_next(request)


def fake_app(service: FakeService[Any], *, title: str, description: str) -> FastAPI:
    """A FastAPI app with the admin API, fault middleware and vendor error replies."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = MAX_CONCURRENT_REQUESTS
        yield

    app = FastAPI(
        title=title,
        description=description,
        docs_url=f"{ADMIN_PREFIX}/docs",
        openapi_url=f"{ADMIN_PREFIX}/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.include_router(_admin_router(service))
    app.middleware("http")(_middleware(service))

    async def refused(request: AsgiRequest, exc: Exception) -> AsgiResponse:
        assert isinstance(exc, Refused)
        return to_asgi(exc.response)

    async def invalid(request: AsgiRequest, exc: Exception) -> AsgiResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        if _is_admin(request):
            return to_asgi(json_response(400, {"detail": validation_message(errors)}))
        return to_asgi(service.invalid(await read_request(request), errors))

    async def not_found(request: AsgiRequest, exc: Exception) -> AsgiResponse:
        assert isinstance(exc, HTTPException)
        if _is_admin(request):
            detail = f"no admin endpoint {request.method} {request.url.path}"
            return to_asgi(json_response(404, {"detail": detail}))
        return to_asgi(service.not_found(await read_request(request)))

    async def crashed(request: AsgiRequest, exc: Exception) -> AsgiResponse:
        logger.error(
            "%s failed on %s %s", service.name, request.method, request.url.path, exc_info=exc
        )
        return to_asgi(json_response(500, {"detail": "the fake crashed; see its log"}))

    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, not_found)
    app.add_exception_handler(Exception, crashed)
    return app


class FakeHTTPServer(Generic[ServiceT]):
    """A fake served by uvicorn from a daemon thread, on a socket bound at construction."""

    def __init__(self, service: ServiceT, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self.service = service
        self._socket = socket.create_server((host, port))
        config = uvicorn.Config(
            service.create_app(),
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"{service.name}-{self.port}",
            daemon=True,
        )

    @property
    def host(self) -> str:
        return str(self._socket.getsockname()[0])

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Start serving; returns once uvicorn has started."""
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.service.name} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Wake sleeping handlers, stop serving and close the socket."""
        self.service.stopping.set()
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT_S)
        self._socket.close()

    def __enter__(self) -> Self:
        return self

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
    return FakeHTTPServer(service, host, port).start()


def parse_command_line(
    config_type: type[ConfigT], description: str, argv: Sequence[str] | None = None
) -> tuple[str, int, ConfigT]:
    """``--host``, ``--port`` and one ``--flag`` per scalar field of the fake's config
    (``base_latency_s`` is ``--base-latency-s``); pydantic converts and checks the values."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    for name, info in config_type.model_fields.items():
        if info.annotation in (str, int, float, bool, str | None):
            flag = "--" + name.replace("_", "-")
            parser.add_argument(flag, dest=name, default=argparse.SUPPRESS, help=info.description)
    args = vars(parser.parse_args(argv))
    host, port = args.pop("host"), args.pop("port")
    try:
        return host, port, config_type.model_validate(args)
    except ValidationError as exc:
        parser.error(validation_message(exc.errors()))


def serve_main(
    service_type: Callable[[ConfigT], FakeService[ConfigT]],
    config_type: type[ConfigT],
    argv: Sequence[str] | None = None,
) -> None:
    """The command line of every fake: its config from flags, served until SIGINT/SIGTERM.

    Prints ``listening on <url>`` once ready (the local stack and the tests wait for it)."""
    description = (service_type.__doc__ or "").strip().partition("\n")[0]
    host, port, config = parse_command_line(config_type, description, argv)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    with start_server(service_type(config), host=host, port=port) as server:
        print(f"listening on {server.url}", flush=True)
        stop.wait()
