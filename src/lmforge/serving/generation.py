"""/v1/completions and /v1/chat/completions: a request becomes `n` engine requests (seeds seed, seed + 1, ...),
whose events come back through one asyncio queue; answered whole, or streamed as server-sent events in
OpenAI's chunk format ending in `data: [DONE]`. A client that goes away cancels its sequences, which leave
the batch at the next step.

A prompt longer than the context leaves room for max_tokens: its oldest tokens are dropped, and the
response says how many (`lmforge.prompt_truncated_tokens`); max_tokens alone at or above the context is
a 400."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass

from fastapi import Request as HTTPRequest
from fastapi.responses import JSONResponse, StreamingResponse

from lmforge.inference.sampling import SamplingConfig
from lmforge.serving.catalog import ServedModel
from lmforge.serving.engine import QueueFull, Request, TokenLogprob
from lmforge.serving.schemas import APIError, ChatRequest, CompletionRequest, Sampling
from lmforge.tokenization.chat import Message


@dataclass
class Limits:
    max_tokens: int = 1024
    """The most tokens a request may ask for."""
    default_chat_tokens: int = 256
    timeout: float = 120.0
    """Seconds a request may take, queueing included."""


@dataclass
class Prepared:
    """The engine requests of one HTTP request and where their events arrive."""

    requests: list[Request]
    queue: asyncio.Queue
    prompt_tokens: int
    truncated: int
    started: float


def _sampling(body: Sampling) -> SamplingConfig:
    return SamplingConfig(temperature=body.temperature, top_k=body.top_k, top_p=None if body.top_p >= 1 else body.top_p,
                          repetition_penalty=body.repetition_penalty)


def _max_tokens(body: Sampling, default: int, limits: Limits, context: int | None) -> int:
    wanted = body.max_completion_tokens or body.max_tokens or default
    if wanted > limits.max_tokens:
        raise APIError(400, f"max_tokens {wanted} is above this server's limit of {limits.max_tokens}.", "max_tokens")
    if context and wanted >= context:
        raise APIError(400, f"max_tokens {wanted} leaves no room for a prompt in this model's context of {context} "
                            "tokens.", "max_tokens")
    return wanted


def _fit(prompt_ids: list[int], max_tokens: int, context: int | None) -> tuple[list[int], int]:
    """The prompt cut from the left so that it and max_tokens fit the context; (ids, tokens dropped)."""
    if not context or len(prompt_ids) + max_tokens <= context:
        return prompt_ids, 0
    keep = context - max_tokens
    return prompt_ids[-keep:], len(prompt_ids) - keep


def submit(served: ServedModel, prompts: list[list[int]], body: Sampling, max_tokens: int, top_logprobs: int | None,
           limits: Limits, stop_ids: set[int]) -> Prepared:
    """Queue n sequences per prompt; QueueFull becomes a 429 (nothing queued)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    context = served.engine.model.max_context
    started = time.perf_counter()
    requests, prompt_tokens, truncated = [], 0, 0
    for p, ids in enumerate(prompts):
        ids, dropped = _fit(ids, max_tokens, context)
        prompt_tokens, truncated = prompt_tokens + len(ids), max(truncated, dropped)
        for i in range(body.n):
            index = p * body.n + i

            def emit(event, payload, index=index):
                loop.call_soon_threadsafe(queue.put_nowait, (index, event, payload))

            seed = None if body.seed is None else body.seed + i
            requests.append(Request(ids, max_tokens, _sampling(body), seed, body.stops(), stop_ids, emit, top_logprobs,
                                    min(body.min_tokens, max_tokens), deadline=started + limits.timeout))
    queued = []
    try:
        for request in requests:
            served.engine.submit(request)
            queued.append(request)
    except QueueFull:
        for request in queued:
            request.cancelled = True
        raise APIError(429, f"model {served.name!r} is at capacity ({served.engine.max_queue} requests waiting); "
                            "retry shortly.", code="queue_full", headers={"Retry-After": "1"}) from None
    return Prepared(requests, queue, prompt_tokens, truncated, started)


def cancel(prepared: Prepared) -> None:
    for request in prepared.requests:
        request.cancelled = True


async def _events(prepared: Prepared, http: HTTPRequest, watch: bool):
    """(index, event, payload) until every sequence is done. With `watch`, a task waits for the client's
    disconnect and cancels the sequences (a streamed response is cancelled by Starlette instead, and its
    generator's `finally` cancels them)."""
    watcher = asyncio.ensure_future(_cancel_on_disconnect(prepared, http)) if watch else None
    open_rows = len(prepared.requests)
    try:
        while open_rows:
            index, event, payload = await prepared.queue.get()
            if event == "done":
                open_rows -= 1
            yield index, event, payload
    finally:
        if watcher is not None:
            watcher.cancel()


async def _cancel_on_disconnect(prepared: Prepared, http: HTTPRequest) -> None:
    """The body has been read: the next ASGI message is the client's disconnect."""
    while (await http.receive())["type"] != "http.disconnect":
        pass
    cancel(prepared)


def _usage(prepared: Prepared) -> dict:
    completion = sum(len(r.completion_ids) for r in prepared.requests)
    return {"prompt_tokens": prepared.prompt_tokens, "completion_tokens": completion,
            "total_tokens": prepared.prompt_tokens + completion}


def _extras(prepared: Prepared) -> dict:
    return {"lmforge": {"prompt_truncated_tokens": prepared.truncated}} if prepared.truncated else {}


def _chat_logprobs(items: list[TokenLogprob]) -> dict:
    def entry(token, logprob):
        return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}

    return {"content": [{**entry(t.token, t.logprob), "top_logprobs": [entry(a, b) for a, b in t.top]}
                        for t in items]}


def _completion_logprobs(items: list[TokenLogprob], offset: int) -> dict:
    offsets, at = [], offset
    for item in items:
        offsets.append(at)
        at += len(item.token)
    return {"tokens": [t.token for t in items], "token_logprobs": [t.logprob for t in items],
            "top_logprobs": [dict(t.top) for t in items], "text_offset": offsets}


def _finish(reason: str) -> str:
    if reason == "timeout":
        raise APIError(504, "the request ran past the server's timeout; ask for fewer tokens or retry.",
                       code="timeout")
    return reason


class Reply:
    """What one request asked for, and how its events become OpenAI objects."""

    def __init__(self, served: ServedModel, chat: bool, prepared: Prepared, include_usage: bool, echo: list[str]):
        self.served, self.chat, self.prepared, self.include_usage, self.echo = served, chat, prepared, include_usage, \
            echo
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        self.created = int(time.time())
        self.object = "chat.completion" if chat else "text_completion"
        self.first_token_at: float | None = None
        self.on_first_token = None   # called once with the seconds from the request to its first text

    def _first_text(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
            if self.on_first_token:
                self.on_first_token(self.first_token_at - self.prepared.started)

    def head(self) -> dict:
        return {"id": self.id, "created": self.created, "model": self.served.name,
                "system_fingerprint": f"lmforge-{self.served.run.contract.tokenizer_sha256[:8]}"}

    async def whole(self, http: HTTPRequest) -> JSONResponse:
        n = len(self.prepared.requests)
        texts, logprobs, reasons = list(self.echo) + [""] * (n - len(self.echo)), [[] for _ in range(n)], [None] * n
        async for index, event, payload in _events(self.prepared, http, watch=True):
            if event == "text":
                self._first_text()
                texts[index] += payload[0]
                logprobs[index] += payload[1]
            else:
                reasons[index] = payload
        if any(r is None or r == "cancelled" for r in reasons):
            return JSONResponse({}, status_code=499)   # the client is gone; nobody reads this
        choices = []
        for i in range(n):
            reason = _finish(reasons[i])
            lp = self.prepared.requests[i].top_logprobs is not None
            if self.chat:
                choices.append({"index": i, "message": {"role": "assistant", "content": texts[i]},
                                "logprobs": _chat_logprobs(logprobs[i]) if lp else None, "finish_reason": reason})
            else:
                choices.append({"index": i, "text": texts[i], "finish_reason": reason,
                                "logprobs": _completion_logprobs(logprobs[i], len(self.echo[i]) if self.echo else 0)
                                if lp else None})
        return JSONResponse({**self.head(), "object": self.object, "choices": choices,
                             "usage": _usage(self.prepared), **_extras(self.prepared)})

    def streamed(self, http: HTTPRequest) -> StreamingResponse:
        return StreamingResponse(self._chunks(http), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def _chunk(self, index: int, text: str | None, reason: str | None, items: list[TokenLogprob] | None,
               first: bool = False) -> str:
        lp = self.prepared.requests[index].top_logprobs is not None
        if self.chat:
            delta = ({"role": "assistant", "content": ""} if first else {}) | ({"content": text} if text else {})
            choice = {"index": index, "delta": delta, "finish_reason": reason,
                      "logprobs": _chat_logprobs(items) if lp and items else None}
        else:
            choice = {"index": index, "text": text or "", "finish_reason": reason,
                      "logprobs": _completion_logprobs(items, 0) if lp and items else None}
        chunk = {**self.head(), "object": self.object + (".chunk" if self.chat else ""), "choices": [choice]}
        return f"data: {json.dumps(chunk)}\n\n"

    async def _chunks(self, http: HTTPRequest):
        try:
            for index in range(len(self.prepared.requests)):
                if self.chat:
                    yield self._chunk(index, None, None, None, first=True)
                elif self.echo:
                    yield self._chunk(index, self.echo[index], None, None)
            async for index, event, payload in _events(self.prepared, http, watch=False):
                if event == "text":
                    self._first_text()
                    yield self._chunk(index, payload[0], None, payload[1])
                elif payload == "timeout":
                    error = {"message": "the request ran past the server's timeout.", "type": "timeout_error",
                             "param": None, "code": "timeout"}
                    yield f"data: {json.dumps({'error': error})}\n\n"
                elif payload != "cancelled":
                    yield self._chunk(index, None, payload, None)
            if self.include_usage:
                usage = {**self.head(), "object": self.object + (".chunk" if self.chat else ""), "choices": [],
                         "usage": _usage(self.prepared), **_extras(self.prepared)}
                yield f"data: {json.dumps(usage)}\n\n"
            yield "data: [DONE]\n\n"
        finally:   # the client went away mid-stream (the generator is closed): free the rows at once
            cancel(self.prepared)


def completion(served: ServedModel, body: CompletionRequest, limits: Limits) -> Reply:
    decoder = served.decoder
    max_tokens = _max_tokens(body, 16, limits, served.engine.model.max_context)
    prompts = body.prompt if isinstance(body.prompt, list) else [body.prompt]
    if not prompts or len(prompts) * body.n > 16:
        raise APIError(400, "prompt: 1 to 16 prompts (times n).", "prompt")
    ids = [decoder.encode(p) for p in prompts]
    stop_ids = {decoder.eos_id} if decoder.eos_id is not None else set()
    if served.template is not None:
        stop_ids |= served.template.stop_ids
    prepared = submit(served, ids, body, max_tokens, body.logprobs, limits, stop_ids)
    echo = [p for p in prompts for _ in range(body.n)] if body.echo else []
    return Reply(served, False, prepared, bool(body.stream_options and body.stream_options.include_usage), echo)


def chat_completion(served: ServedModel, body: ChatRequest, limits: Limits) -> Reply:
    if served.template is None:
        raise APIError(400, f"model {served.name!r} has no chat template (it was not fine-tuned for chat); use "
                            f"/v1/completions, or fine-tune it with `lmforge finetune --task chat`.", "model")
    max_tokens = _max_tokens(body, limits.default_chat_tokens, limits, served.engine.model.max_context)
    ids = served.template.prompt([Message(m.role, m.content) for m in body.messages])
    top = (body.top_logprobs or 0) if body.logprobs else None
    prepared = submit(served, [ids], body, max_tokens, top, limits, served.template.stop_ids)
    return Reply(served, True, prepared, bool(body.stream_options and body.stream_options.include_usage), [])
