"""The HTTP server: an ASGI app (FastAPI) over the served runs. OpenAI-compatible /v1/models, /v1/completions,
/v1/chat/completions and /v1/embeddings; lmforge's /v1/classify, /v1/tag, /v1/answer, /v1/score and
/v1/translate; /health (503 while the runs load), /metrics (Prometheus), and the playground and runs page
at /. Every error is OpenAI's envelope with a 4xx and a reason; no path or stack trace leaves the server.

Model work that is not generation (embeddings, task heads, scoring, translation) runs in the thread pool,
one request per model at a time (a lock), so the event loop, and with it the streams, never waits on it."""

from __future__ import annotations

import base64
import hmac
import json
import threading
import time
from dataclasses import dataclass
from importlib import resources

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from lmforge.errors import InputError
from lmforge.serving import catalog
from lmforge.serving.catalog import ServedModel
from lmforge.serving.engine import drive
from lmforge.serving.generation import Limits, chat_completion, completion
from lmforge.serving.metrics import ServerMetrics
from lmforge.serving.schemas import (
    AnswerRequest,
    APIError,
    ChatRequest,
    CompletionRequest,
    EmbeddingRequest,
    TextsRequest,
    as_list,
    error_response,
)

OPEN_PATHS = ("/", "/health", "/favicon.ico")


@dataclass
class ServeSettings:
    api_key: str | None = None
    max_request_bytes: int = 1 << 20
    max_batch: int = 8
    max_queue: int = 64
    threads: int | None = None
    limits: Limits = None
    engine_threads: bool = True
    """each decoder's engine steps in a thread of its own; False: the caller runs `Server.drive` (serve does,
    from the main thread, where PyTorch's CPU threads are fastest)"""

    def __post_init__(self) -> None:
        self.limits = self.limits or Limits()


class Server:
    """The app's state: the served models, their loading, metrics."""

    def __init__(self, models: dict[str, ServedModel], settings: ServeSettings):
        self.models, self.settings = models, settings
        self.metrics = ServerMetrics(models)
        self.load_error: str | None = None
        self.loaded = threading.Event()
        self.wake = threading.Condition()
        self.stop = threading.Event()

    def load_all(self) -> None:
        s = self.settings
        try:
            for served in self.models.values():
                catalog.load_model(served, s.max_batch, s.max_queue, s.threads, self.wake, s.engine_threads)
        except InputError as error:   # a run damaged after it was opened: say so on /health
            self.load_error = str(error)
        finally:
            self.loaded.set()

    def drive(self) -> None:
        """Step the engines from this thread until `close` (with engine_threads False)."""
        drive(lambda: [m.engine for m in self.models.values() if m.engine is not None], self.wake, self.stop)

    def close(self) -> None:
        self.stop.set()
        with self.wake:
            self.wake.notify_all()
        for served in self.models.values():
            if served.engine is not None:
                served.engine.close()

    def model(self, name: str, route: str) -> ServedModel:
        if not self.loaded.is_set():
            raise APIError(503, "the server is still loading its models; retry shortly.", code="loading",
                           headers={"Retry-After": "2"})
        served = self.models.get(name)
        if served is None:
            raise APIError(404, f"model {name!r} not found; this server has: {', '.join(self.models)}.", "model",
                           "model_not_found")
        if not served.loaded:
            raise APIError(503, f"model {name!r} failed to load: {self.load_error}", "model")
        if route not in served.routes:
            raise APIError(400, f"model {name!r} ({served.run.kind.what}) does not serve {route}; it serves "
                                f"{', '.join(served.routes)}.", "model", "wrong_route")
        return served


def create_app(models: dict[str, ServedModel], settings: ServeSettings | None = None, load: bool = True) -> FastAPI:
    settings = settings or ServeSettings()
    server = Server(models, settings)
    app = FastAPI(title="lmforge", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server
    if load:
        threading.Thread(target=server.load_all, name="lmforge-load", daemon=True).start()
    _add_guards(app, server)
    _add_errors(app)
    _add_generation(app, server)
    _add_other_routes(app, server)
    _add_pages(app, server)
    app.router.add_event_handler("shutdown", server.close)
    return app


def _add_guards(app: FastAPI, server: Server) -> None:
    @app.middleware("http")
    async def guard(request: Request, call_next):
        start = time.perf_counter()
        route = request.url.path
        key = server.settings.api_key
        if key and route not in OPEN_PATHS:
            given = request.headers.get("authorization", "")
            token = given[7:] if given.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(token.encode(), key.encode()):
                response = error_response(401, "missing or wrong API key: send Authorization: Bearer KEY.",
                                          code="invalid_api_key")
                server.metrics.requests.labels(route, "401").inc()
                return response
        if request.method == "POST" and "json" not in request.headers.get("content-type", ""):
            # `curl -d` sends a form content type: the body is read as JSON whatever it is labelled
            request.scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"] + \
                [(b"content-type", b"application/json")]
        size = request.headers.get("content-length")
        if size and size.isdigit() and int(size) > server.settings.max_request_bytes:
            server.metrics.requests.labels(route, "413").inc()
            return error_response(413, f"request body of {size} bytes is above the limit of "
                                       f"{server.settings.max_request_bytes}.", code="too_large")
        response = await call_next(request)
        known = route if route.startswith("/v1/") or route in ("/health", "/metrics") else "other"
        server.metrics.requests.labels(known, str(response.status_code)).inc()
        server.metrics.latency.labels(known).observe(time.perf_counter() - start)
        return response


def _add_errors(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError):
        return error_response(error.status, error.message, error.param, error.code, error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        if first.get("type") == "json_invalid":
            return error_response(400, "the request body is not valid JSON.", code="invalid_json")
        message = first.get("msg", "invalid request")
        return error_response(400, f"{where}: {message}" if where else message, where or None, "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return error_response(error.status_code, str(error.detail))

    @app.exception_handler(InputError)
    async def input_error(request: Request, error: InputError):
        return error_response(400, _no_paths(str(error)))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):   # a bug: still no trace or path to the client
        return error_response(500, f"internal error ({type(error).__name__}); the server log has details.")


def _no_paths(message: str) -> str:
    """An InputError names files for the terminal; a client gets the reason without the path before it."""
    head, sep, rest = message.partition(": ")
    return rest if sep and ("/" in head or "\\" in head) else message


def _add_generation(app: FastAPI, server: Server) -> None:
    limits = server.settings.limits

    async def answer(reply, body, http: Request):
        name = reply.served.name
        server.metrics.prompt_tokens.labels(name).inc(reply.prepared.prompt_tokens)
        reply.on_first_token = lambda seconds: server.metrics.first_token.labels(name).observe(seconds)
        return reply.streamed(http) if body.stream else await reply.whole(http)

    @app.post(catalog.COMPLETIONS)
    async def completions(body: CompletionRequest, http: Request):
        served = server.model(body.model, catalog.COMPLETIONS)
        return await answer(completion(served, body, limits), body, http)

    @app.post(catalog.CHAT)
    async def chat(body: ChatRequest, http: Request):
        served = server.model(body.model, catalog.CHAT)
        return await answer(chat_completion(served, body, limits), body, http)


def _add_other_routes(app: FastAPI, server: Server) -> None:
    async def locked(served: ServedModel, work):
        def run():
            with served.lock:
                return work()
        return await run_in_threadpool(run)

    @app.get("/v1/models")
    async def list_models():
        return {"object": "list", "data": [m.describe() for m in server.models.values()]}

    @app.get("/v1/models/{name}")
    async def one_model(name: str):
        if name not in server.models:
            raise APIError(404, f"model {name!r} not found; this server has: {', '.join(server.models)}.", "model")
        return server.models[name].describe()

    @app.post(catalog.EMBEDDINGS)
    async def embeddings(body: EmbeddingRequest):
        served = server.model(body.model, catalog.EMBEDDINGS)
        texts = _texts(body.input, 256)
        vectors, used = await locked(served, lambda: catalog.embed_texts(served, texts))
        if body.encoding_format == "base64":
            vectors = [base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode() for v in vectors]
        return {"object": "list", "model": served.name, "usage": {"prompt_tokens": used, "total_tokens": used},
                "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]}

    @app.post(catalog.SCORE)
    async def score(body: TextsRequest):
        served = server.model(body.model, catalog.SCORE)
        texts = _texts(body.input, 64)
        results = await locked(served, lambda: [catalog.score_text(served, t) for t in texts])
        return {"object": "list", "model": served.name, "data": [{"index": i, **r} for i, r in enumerate(results)]}

    @app.post(catalog.CLASSIFY)
    async def classify(body: TextsRequest):
        return await _predict(server, locked, body, catalog.CLASSIFY)

    @app.post(catalog.TAG)
    async def tag(body: TextsRequest):
        return await _predict(server, locked, body, catalog.TAG)

    @app.post(catalog.ANSWER)
    async def answer_question(body: AnswerRequest):
        from lmforge.inference.tasks import predict
        from lmforge.tasks.qa import QAExample

        served = server.model(body.model, catalog.ANSWER)
        items = [QAExample(q.question, q.context, None, None, f"input {i}") for i, q in enumerate(as_list(body.input))]
        predictions = await locked(served, lambda: predict(served.task_run, items))
        return {"object": "list", "model": served.name, "data": predictions}

    @app.post(catalog.TRANSLATE)
    async def translate(body: TextsRequest):
        from lmforge.inference.translation import DecodeConfig

        served = server.model(body.model, catalog.TRANSLATE)
        texts = _texts(body.input, 64)
        done = await locked(served, lambda: served.translator.translate(texts, DecodeConfig(), warn=False))
        return {"object": "list", "model": served.name,
                "data": [{"index": i, "source": t.source, "translation": t.text} for i, t in enumerate(done)]}


async def _predict(server: Server, locked, body: TextsRequest, route: str):
    from lmforge.inference.tasks import predict

    served = server.model(body.model, route)
    task_run = served.task_run
    texts = _texts(body.input, 256)
    items = task_run.task.items_to_predict(texts, None, task_run.fields)
    predictions = await locked(served, lambda: predict(task_run, items))
    return {"object": "list", "model": served.name, "data": predictions}


def _texts(value, most: int) -> list[str]:
    texts = as_list(value)
    if not texts or len(texts) > most:
        raise APIError(400, f"input: 1 to {most} texts.", "input")
    if any(not isinstance(t, str) or not t.strip() for t in texts):
        raise APIError(400, "input: every text must be a non-empty string.", "input")
    return texts


def _add_pages(app: FastAPI, server: Server) -> None:
    @app.get("/health")
    async def health():
        if not server.loaded.is_set():
            return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "2"})
        if server.load_error:
            return JSONResponse({"status": "error", "message": _no_paths(server.load_error)}, status_code=503)
        return {"status": "ok", "models": list(server.models)}

    @app.get("/metrics")
    async def metrics():
        return Response(server.metrics.text(), media_type="text/plain; version=0.0.4")

    @app.get("/", response_class=HTMLResponse)
    async def playground():
        return HTMLResponse(resources.files("lmforge.serving").joinpath("playground.html").read_text("utf-8"))

    @app.get("/favicon.ico")
    async def favicon():
        return Response(status_code=204)

    @app.get("/lmforge/runs")
    async def runs():
        return {"object": "list", "data": [_run_record(m) for m in server.models.values()]}


def _run_record(served: ServedModel) -> dict:
    """A served run's metrics.jsonl (train loss and val loss curves, final figures) for the runs page."""
    train, val, last = [], [], {}
    path = served.run.path / "metrics.jsonl"
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "loss" in record:
                train.append([record.get("step"), record["loss"]])
            if "val_loss" in record:
                val.append([record.get("step"), record["val_loss"]])
            last.update({k: v for k, v in record.items() if isinstance(v, (int, float))})
    return {**served.describe(), "train_loss": train[-500:], "val_loss": val[-500:], "last": last}
