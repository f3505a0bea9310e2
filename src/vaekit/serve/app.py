"""The explorer's web application: the page, its assets (a style sheet and JavaScript modules) and the JSON API (FastAPI).

Every route but ``/api/decode`` is a plain ``def``, so FastAPI runs it in its thread pool; small decode
requests are answered on the event loop (see ``decode``). Model calls are serialised per run (see
:mod:`vaekit.serve.explorer`). Errors become JSON ``{"detail": "one line"}``: 4xx for bad
input, 500 with a generic message for anything unexpected, whose traceback goes to the server log
and never to the client.
"""
from __future__ import annotations

import logging
from importlib import resources
from typing import Annotated

from fastapi import FastAPI, File, Form, Query, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from vaekit import __version__
from vaekit.errors import VaekitError
from vaekit.serve import apidocs, schemas
from vaekit.serve.images import MAX_UPLOAD_BYTES, BadInput
from vaekit.serve.registry import RunRegistry

log = logging.getLogger(__name__)

# The page and its assets, served by name from this fixed table (never from a path in a request).
# The page's script is main.js, a native ES module that imports the others (see its header).
MODULES = ("main.js", "state.js", "dom.js", "api.js", "decoder.js", "plot.js", "map.js", "panels.js", "tools.js")
ASSETS = {"explorer.css": "text/css; charset=utf-8",
          **{name: "text/javascript; charset=utf-8" for name in MODULES}}
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 64 * 1024      # an upload plus its multipart envelope
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
INLINE_CODES = 8          # decode requests up to this size are answered on the event loop (see decode)
RunQuery = Annotated[str | None, Query(max_length=300, description="run id (default: the first run)")]


def create_app(registry: RunRegistry, *, allowed_hosts=LOOPBACK_NAMES) -> FastAPI:
    """The explorer for ``registry``'s runs. ``allowed_hosts``: Host header names to answer (None: any),
    which stops a web page in another tab from reaching a loopback server through DNS rebinding."""
    # FastAPI's /docs (Swagger UI) loads from a CDN and is blank offline: /docs is our own page (apidocs.py).
    app = FastAPI(title="vaekit latent explorer", version=__version__, docs_url=None, redoc_url=None,
                  description="The JSON API under the page of `vaekit serve`: codes in, PNG data URLs out.")
    page = _asset("index.html")
    assets = {name: _asset(name) for name in ASSETS}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index():
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"})

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        if name not in ASSETS:
            raise BadInput(f"no asset called {name!r}", 404)
        return Response(assets[name], media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs():
        return HTMLResponse(apidocs.api_page(app.openapi()), headers={"Content-Security-Policy": apidocs.POLICY})

    @app.get("/api/runs", response_model=schemas.Runs, summary="The served runs")
    def runs():
        return {"runs": registry.listing(), "default": registry.default}

    @app.get("/api/info", response_model=schemas.Info, summary="A run's model, dataset, latent_dim and class names")
    def info(run: RunQuery = None):
        return registry.get(run).info()

    @app.get("/api/map", response_model=schemas.MapData, summary="The latent map of the test set")
    def latent_map(run: RunQuery = None):
        return registry.get(run).map()

    @app.get("/api/test-images/{index}", response_model=schemas.TestImage,
             summary="A test image, its label, its posterior and its reconstruction")
    def test_image(index: int, run: RunQuery = None):
        return registry.get(run).test_image(index)

    @app.post("/api/decode", response_model=schemas.Images, summary="Decode codes into PNG data URLs")
    async def decode(request: schemas.DecodeRequest):
        # The live path (the page decodes the code under the cursor on every move). A few codes take
        # well under a millisecond, less than the hop to a worker thread and back, which on a busy
        # CPU costs a scheduling delay each way; so they are decoded right here, on the event loop.
        # Bigger requests, and a run not opened yet (seconds of loading), go to the thread pool.
        explorer = registry.opened(request.run)
        if explorer is None or len(request.z) > INLINE_CODES:
            return await run_in_threadpool(_decode, registry, request)
        return _decode(registry, request)

    @app.post("/api/encode", response_model=schemas.Upload,
              summary="Encode an uploaded PNG or JPEG: posterior mean and log-variance, reconstruction")
    def encode(file: Annotated[UploadFile, File(description=f"PNG or JPEG, at most {MAX_UPLOAD_BYTES // 2**20} MB")],
               run: Annotated[str | None, Form(max_length=300)] = None,
               invert: Annotated[bool, Form(description="flip grey levels (dark objects on light backgrounds)")] = False):
        data = file.file.read(MAX_UPLOAD_BYTES + 1)
        return registry.get(run).encode_upload(data, invert=invert)

    @app.post("/api/interpolate", response_model=schemas.Path, summary="Decode the path between two codes")
    def interpolate(request: schemas.InterpolateRequest):
        explorer = registry.get(request.run)
        start, end = explorer.check_codes([request.start, request.end])
        return explorer.interpolate(start, end, request.steps, request.method)

    @app.post("/api/sample", response_model=schemas.Samples, summary="Draw codes from the prior (or a mixture) and decode them")
    def sample(request: schemas.SampleRequest):
        return registry.get(request.run).sample(request.n, sampler=request.sampler,
                                                temperature=request.temperature, seed=request.seed)

    @app.post("/api/attribute", response_model=schemas.Attribute,
              summary="An attribute vector: class A's mean code minus class B's")
    def attribute(request: schemas.AttributeRequest):
        return registry.get(request.run).attribute(request.plus, request.minus)

    @app.exception_handler(BadInput)
    def bad_input(request, exc: BadInput):
        log.info("%s %s -> %d: %s", request.method, request.url.path, exc.status, exc)
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(VaekitError)
    def vaekit_error(request, exc: VaekitError):
        log.info("%s %s -> 422: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    def invalid(request, exc: RequestValidationError):
        detail = "; ".join(_describe(error) for error in exc.errors()[:5])
        log.info("%s %s -> 422: %s", request.method, request.url.path, detail)
        return JSONResponse({"detail": detail}, status_code=422)

    app.add_middleware(ErrorBoundary)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    if allowed_hosts is not None:
        app.add_middleware(HostCheck, allowed=allowed_hosts)
    return app


def _decode(registry: RunRegistry, request: schemas.DecodeRequest) -> dict:
    explorer = registry.get(request.run)
    return explorer.decode(explorer.check_codes(request.z))


def _asset(name: str) -> bytes:
    try:
        return resources.files("vaekit.serve").joinpath("static", name).read_bytes()
    except OSError:
        raise VaekitError(f"the explorer's page ({name}) is missing from this installation of vaekit "
                          "(vaekit/serve/static): install vaekit from its source tree (pip install -e .)") from None


def _describe(error: dict) -> str:
    """One validation error as "z[0][3]: Input should be a finite number"."""
    where = [part for part in error.get("loc", ()) if part not in ("body", "query", "path")]
    name = "".join(f"[{part}]" if isinstance(part, int) else (f".{part}" if i else str(part))
                   for i, part in enumerate(where))
    message = error.get("msg", "invalid value")
    if error.get("type") == "json_invalid":
        message = "the request body is not valid JSON"
    return f"{name}: {message}" if name else message


# -- ASGI middleware: plain classes, so they see the raw request before FastAPI parses anything -----
async def _send_json(send, status: int, detail: str) -> None:
    body = ('{"detail": %s}' % _json_string(detail)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _json_string(text: str) -> str:
    import json

    return json.dumps(text)


class HostCheck:
    """Answer only requests whose Host header names an allowed host (421 otherwise)."""

    def __init__(self, app, allowed):
        self.app, self.allowed = app, {name.lower() for name in allowed}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
            name = host[1:host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
            if name not in self.allowed:
                log.warning("refused a request for host %r (allowed: %s)", host, ", ".join(sorted(self.allowed)))
                await _send_json(send, 421, f"this server answers for {', '.join(sorted(self.allowed))} only")
                return
        await self.app(scope, receive, send)


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (413), by Content-Length or while they stream in."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        message = f"the request is larger than {self.limit // 2**20} MB: uploads may be at most {MAX_UPLOAD_BYTES // 2**20} MB"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            log.info("%s %s -> 413: Content-Length %s", scope["method"], scope["path"], length.decode("latin-1"))
            return await _send_json(send, 413, message)
        received, too_large, answered = 0, False, False

        async def counted_receive():
            nonlocal received, too_large
            event = await receive()
            received += len(event.get("body", b""))
            if received > self.limit:
                too_large = True
                raise BodyTooLarge
            return event

        async def guarded_send(event):
            # FastAPI turns a failure while reading the body into its own 400: answer 413 instead.
            nonlocal answered
            if too_large:
                if not answered:
                    answered = True
                    log.info("%s %s -> 413: body over %d bytes", scope["method"], scope["path"], self.limit)
                    await _send_json(send, 413, message)
                return
            answered = answered or event["type"] == "http.response.start"
            await send(event)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge:
            if not answered:
                await guarded_send({"type": "http.response.start"})


class ErrorBoundary:
    """Log any unexpected exception with its traceback and answer 500 with a generic message."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked_send(event):
            nonlocal started
            started = started or event["type"] == "http.response.start"
            await send(event)

        try:
            await self.app(scope, receive, tracked_send)
        except BodyTooLarge:
            raise
        except Exception:
            log.exception("%s %s failed", scope["method"], scope["path"])
            if not started:
                await _send_json(send, 500, "internal error: the server log has the details")
