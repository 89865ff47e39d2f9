"""Helpers of the serving tests: conversations the tests write, and a live server on a free port of 127.0.0.1
(uvicorn in a thread). The runs they serve are the `served_runs` fixture of tests/conftest.py."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import httpx

GREETINGS = ["hello", "hi", "good morning", "how are you", "what is your name", "tell me a story"]
REPLIES = ["hello there", "hi friend", "good morning to you", "i am fine", "my name is forge", "once upon a time"]


def write_conversations(folder: Path, n: int = 300, seed: int = 0) -> Path:
    """train/valid JSONL: prompt/response records and `messages` lists (multi-turn, with a system message)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n), ("valid", n // 10)):
        with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as handle:
            for i in range(count):
                k = rng.randrange(len(GREETINGS))
                if i % 3:
                    handle.write(json.dumps({"prompt": GREETINGS[k], "response": REPLIES[k]}) + "\n")
                else:
                    j = rng.randrange(len(GREETINGS))
                    messages = [{"role": "system", "content": "be brief"},
                                {"role": "user", "content": GREETINGS[k]}, {"role": "assistant", "content": REPLIES[k]},
                                {"role": "user", "content": GREETINGS[j]}, {"role": "assistant", "content": REPLIES[j]}]
                    handle.write(json.dumps({"messages": messages}) + "\n")
            handle.write(json.dumps({"prompt": "no reply field"}) + "\n")   # skipped and counted
    return folder


class LiveServer:
    def __init__(self, app):
        import uvicorn

        from lmforge.commands.serve import bind

        self.sock = bind("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the server did not come up")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.app.state.server.close()


def start_server(paths, **settings) -> LiveServer:
    from lmforge.serving.app import ServeSettings, create_app
    from lmforge.serving.catalog import open_models

    return LiveServer(create_app(open_models(paths), ServeSettings(**settings)))
