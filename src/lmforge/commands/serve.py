"""`lmforge serve`: runs over HTTP, the way the ecosystem expects (the official `openai` client works
against it unchanged): /v1/models, /v1/completions, /v1/chat/completions (streamed as server-sent events),
/v1/embeddings; /v1/classify, /v1/tag, /v1/answer, /v1/score, /v1/translate for the other kinds of run;
/health, /metrics; the playground and runs page at /. Decoder runs share forward passes across concurrent
requests (continuous batching).

Examples:
    lmforge serve runs/chat runs/sent-bert runs/w2v runs/kn5 --port 8000
    lmforge serve runs/chat --api-key "$KEY" --max-batch 16
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from lmforge.config import add_config_args, config_from_args
from lmforge.errors import InputError


@dataclass
class ServeConfig:
    runs: list[Path] = field(default_factory=list, metadata={"positional": True, "nargs": "+"})
    """run directories to serve (each is a model, named by its directory)"""
    host: str = "127.0.0.1"
    """address to bind (0.0.0.0 exposes the server to the network: set --api-key)"""
    port: int = 8000
    """TCP port (0: any free port, printed at start)"""
    api_key: str | None = None
    """require Authorization: Bearer KEY on every route but / and /health"""
    max_batch: int = 8
    """sequences a decoder steps together"""
    max_queue: int = 64
    """requests waiting per model before new ones get 429"""
    max_tokens: int = 1024
    """the most tokens one request may generate"""
    timeout: float = 120.0
    """seconds a request may take, queueing included"""
    max_request_kb: int = 1024
    """largest request body"""
    threads: int | None = None
    """torch CPU threads of the decoders (None: torch's choice)"""

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_queue", "max_tokens", "max_request_kb"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive.")
        if not 0 <= self.port < 65536:
            raise ValueError(f"--port {self.port}: not a TCP port.")


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    add_config_args(parser, ServeConfig, switches=True)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before any model loads: a port in use is one line, exit 2."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: a response's header and body writes are not held back by Nagle's
    # algorithm waiting for the client's delayed ACK (40 ms per request on Linux, measured)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise InputError(f"--host {host} --port {port}: cannot listen there ({error.strerror}); is another server "
                         "running? Choose another --port.") from None
    sock.listen(2048)
    return sock


def run(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from lmforge.serving.app import ServeSettings, create_app
    from lmforge.serving.catalog import open_models
    from lmforge.serving.generation import Limits

    c = config_from_args(ServeConfig, args)
    models = open_models(c.runs)                     # not a run: exit 2 before the port is bound
    sock = bind(c.host, c.port)
    settings = ServeSettings(c.api_key, c.max_request_kb * 1024, c.max_batch, c.max_queue, c.threads,
                             Limits(max_tokens=c.max_tokens, timeout=c.timeout), engine_threads=False)
    if c.threads:
        torch.set_num_threads(c.threads)
    # the HTTP thread and the decoding loop hand the GIL back and forth every token: at the default 5 ms
    # switch interval a waiting thread can lose a whole decoding step
    sys.setswitchinterval(0.0005)
    app = create_app(models, settings)
    host, port = sock.getsockname()[:2]
    print(f"serve: {', '.join(models)} on http://{host}:{port}/ (playground), OpenAI API at http://{host}:{port}/v1"
          + ("" if c.api_key else "; no API key") + "; Ctrl-C stops", file=sys.stderr, flush=True)
    # HTTP in a thread, the decoding steps on this (main) thread: see serving/engine.py
    http = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=http.run, kwargs={"sockets": [sock]}, name="lmforge-http", daemon=True)
    thread.start()
    state = app.state.server
    signal.signal(signal.SIGTERM, lambda *_: state.close())
    try:
        state.drive()
    except KeyboardInterrupt:
        pass
    finally:
        http.should_exit = True
        state.close()
        thread.join(timeout=10)
    print("serve: stopped", file=sys.stderr)
    return 0
