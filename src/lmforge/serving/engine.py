"""Continuous batching: one thread per served decoder steps every running sequence together, and new
requests join the batch between steps (their prompts read in a forward pass of their own, then their
state joined to the batch's: `JoinableDecoder.join`). A row leaves the batch the step it finishes, is
cancelled (its client went away) or runs past its deadline.

Each row draws with its own seeded generator and is filtered on its own, so a seeded request's text is
the one it gets alone, whatever else shares the batch. The queue of waiting requests is bounded: `submit`
refuses a request when it is full (the server answers 429 with Retry-After).

An engine steps in a thread of its own, or is driven by `drive` from the caller's thread: `lmforge serve`
drives its engines from the main thread and runs the HTTP server in another, because on a CPU PyTorch's
intra-op threads ran a decoding step from a secondary thread markedly slower (hand timings, 8 rows of the small
preset, 2 threads: about 650 tokens/s from a worker thread against 930 from the main one)."""

from __future__ import annotations

import collections
import ctypes
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from lmforge.inference.decoding import JoinableDecoder, TextStream, left_padded
from lmforge.inference.sampling import SamplingConfig, sample_rows, seeded_generator


def _trim_heap() -> None:
    """Hand freed memory (the batch's cache) back to the system when the batch empties: glibc keeps freed
    blocks in its arenas otherwise, and an idle server would stay at its busiest size."""
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
        except OSError:
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC = None


class QueueFull(Exception):
    """The engine's queue holds its maximum of waiting requests."""


@dataclass
class TokenLogprob:
    token: str
    logprob: float
    top: list[tuple[str, float]]


@dataclass
class Request:
    """One sequence to generate. `emit(event, payload)` is called from the engine thread: ("text", (delta,
    logprobs of the tokens since the last text)) as text becomes final, then ("done", finish_reason) once."""

    prompt_ids: list[int]
    max_tokens: int
    sampling: SamplingConfig
    seed: int | None
    stops: list[str]
    stop_ids: set[int]
    emit: Callable[[str, object], None]
    top_logprobs: int | None = None      # None: no logprobs; 0: the chosen token's only
    min_tokens: int = 0                  # stop tokens are not drawn before this many (fixed-length benchmarks)
    deadline: float = math.inf
    cancelled: bool = False
    submitted: float = field(default_factory=time.perf_counter)
    completion_ids: list[int] = field(default_factory=list)


@dataclass
class _Row:
    request: Request
    generator: torch.Generator
    stream: TextStream
    seen: int = 0                 # tokens in this row's state
    last: int = 0                 # the token the state has not read yet
    pending_logprobs: list[TokenLogprob] = field(default_factory=list)
    reason: str | None = None


@dataclass
class EngineStats:
    steps: int = 0
    rows_stepped: int = 0
    generated: int = 0
    prompt_tokens: int = 0
    busy_seconds: float = 0.0

    @property
    def occupancy(self) -> float:
        """Mean rows per decoding step."""
        return self.rows_stepped / max(self.steps, 1)


class Engine:
    """The batch of one decoder. `decode(ids) -> text`; `token_text(id) -> str` names a token for logprobs."""

    def __init__(self, model: JoinableDecoder, decode: Callable[[list[int]], str], token_text: Callable[[int], str],
                 max_batch: int = 8, max_queue: int = 64, threads: int | None = None,
                 wake: threading.Condition | None = None, own_thread: bool = True):
        self.model, self.decode, self.token_text = model, decode, token_text
        self.max_batch, self.max_queue, self.threads = max_batch, max_queue, threads
        self.waiting: collections.deque[Request] = collections.deque()
        self.rows: list[_Row] = []
        self.state = None
        self.stats = EngineStats()
        self._wake = wake or threading.Condition()   # shared by the engines one `drive` steps
        self._stop = False
        param = next(model.parameters(), None)
        self.device = param.device if param is not None else torch.device("cpu")
        self.dtype = param.dtype if param is not None else None
        self.thread = threading.Thread(target=self._run, name="lmforge-engine", daemon=True) if own_thread else None
        if self.thread is not None:
            self.thread.start()

    # --- called from the HTTP side ------------------------------------------------------------
    def submit(self, request: Request) -> None:
        with self._wake:
            if len(self.waiting) >= self.max_queue:
                raise QueueFull
            self.waiting.append(request)
            self._wake.notify_all()

    @property
    def queue_depth(self) -> int:
        return len(self.waiting)

    @property
    def running(self) -> int:
        return len(self.rows)

    def close(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        if self.thread is not None:
            self.thread.join(timeout=5)
        else:
            self._release_all()

    def _release_all(self) -> None:
        """Every running and waiting request ends ("cancelled"): the server is stopping."""
        with self._wake:
            pending, self.waiting = list(self.waiting), collections.deque()
        for request in [row.request for row in self.rows] + pending:
            request.emit("done", "cancelled")
        self.rows, self.state = [], None

    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.rows)

    # --- stepping ------------------------------------------------------------------------------
    def work(self) -> bool:
        """One step of the batch, after letting waiting requests join it; False when there was nothing to do."""
        with self._wake:
            if self._stop:
                return False
            joining = [self.waiting.popleft() for _ in range(min(len(self.waiting), self.max_batch - len(self.rows)))]
        if not joining and not self.rows:
            return False
        start = time.perf_counter()
        with torch.inference_mode():
            self._drop_finished()
            if self.rows:
                self._decode_step()
            joining = [r for r in joining if not self._gone(r)]
            if joining:
                self._admit(joining)
            self._drop_finished()
        self.stats.busy_seconds += time.perf_counter() - start
        return True

    def _run(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        while True:
            with self._wake:
                while not self._stop and not self.has_work:
                    self._wake.wait()
                if self._stop:
                    break
            self.work()
        self._release_all()

    def _gone(self, request: Request) -> bool:
        if request.cancelled:
            request.emit("done", "cancelled")
            return True
        if time.perf_counter() > request.deadline:
            request.emit("done", "timeout")
            return True
        return False

    def _capacity(self, requests: list[Request]) -> int | None:
        if not self.model.max_context:
            return None
        longest = max(len(r.prompt_ids) + r.max_tokens for r in requests)
        return min(longest, self.model.max_context)

    def _admit(self, requests: list[Request]) -> None:
        """Read the new prompts together in a state of their own, choose their first tokens, and join it to
        the running batch."""
        state = self.model.new_state(len(requests), self._capacity(requests), device=self.device, dtype=self.dtype)
        tokens, positions = left_padded([r.prompt_ids for r in requests], [0] * len(requests), self.device)
        logits, state = self.model.step(tokens, positions, state, keep_last=1)
        rows = [_Row(r, seeded_generator(r.seed), TextStream(self.decode, r.stops, None), seen=len(r.prompt_ids))
                for r in requests]
        self.stats.prompt_tokens += sum(len(r.prompt_ids) for r in requests)
        self._choose(rows, logits[:, -1])
        self.state = state if self.state is None else self.model.join(self.state, state)
        self.rows += rows

    def _decode_step(self) -> None:
        tokens, positions = left_padded([[row.last] for row in self.rows], [row.seen for row in self.rows],
                                        self.device)
        logits, self.state = self.model.step(tokens, positions, self.state, keep_last=1)
        for row in self.rows:
            row.seen += 1
        self.stats.steps += 1
        self.stats.rows_stepped += len(self.rows)
        self._choose(self.rows, logits[:, -1])

    def _choose(self, rows: list[_Row], logits: torch.Tensor) -> None:
        """Each row's next token from its logits (B, V), by its own sampling settings and generator; rows with
        the same settings are filtered in one call (row-wise, so a row's result is the one it gets alone)."""
        logits = logits.float().cpu()
        for i, row in enumerate(rows):
            request = row.request
            if len(request.completion_ids) < request.min_tokens and request.stop_ids:
                logits[i, list(request.stop_ids)] = float("-inf")
        groups: dict[tuple, list[int]] = {}
        for i, row in enumerate(rows):
            s = row.request.sampling
            groups.setdefault((s.temperature, s.top_k, s.top_p, s.repetition_penalty), []).append(i)
        chosen = [0] * len(rows)
        for members in groups.values():
            sampling = rows[members[0]].request.sampling
            histories = [torch.tensor(rows[i].request.prompt_ids + rows[i].request.completion_ids) for i in members] \
                if sampling.repetition_penalty != 1.0 else None
            tokens = sample_rows(logits[members], histories, sampling, [rows[i].generator for i in members])
            for i, token in zip(members, tokens):
                chosen[i] = token
        for row, row_logits, token in zip(rows, logits, chosen):
            if row.request.top_logprobs is not None:
                row.pending_logprobs.append(self._logprob(row_logits, token, row.request.top_logprobs))
            self._advance(row, token)

    def _logprob(self, logits: torch.Tensor, token: int, top: int) -> TokenLogprob:
        logprobs = torch.log_softmax(logits, dim=-1)
        best = torch.topk(logprobs, min(top, logprobs.numel())) if top else None
        pairs = [] if best is None else [(self.token_text(int(i)), float(v)) for v, i in zip(best.values,
                                                                                             best.indices)]
        return TokenLogprob(self.token_text(token), float(logprobs[token]), pairs)

    def _advance(self, row: _Row, token: int) -> None:
        request = row.request
        self.stats.generated += 1
        if token in request.stop_ids:
            row.reason = "stop"
        else:
            request.completion_ids.append(token)
            row.last = token
            emitted = len(row.stream.emitted)
            if row.stream.push(request.completion_ids):
                row.reason = "stop"
            elif len(request.completion_ids) >= request.max_tokens:
                row.reason = "length"
            elif self.model.max_context and row.seen + 1 > self.model.max_context:
                row.reason = "length"          # the context is full
            if len(row.stream.emitted) > emitted:
                request.emit("text", (row.stream.emitted[emitted:], row.pending_logprobs))
                row.pending_logprobs = []
        if row.reason is not None:
            tail = row.stream.finish(request.completion_ids)
            if len(tail) > len(row.stream.emitted) or row.pending_logprobs:
                request.emit("text", (tail[len(row.stream.emitted):], row.pending_logprobs))
                row.stream.emitted, row.pending_logprobs = tail, []
            request.emit("done", row.reason)

    def _drop_finished(self) -> None:
        """Rows that finished, were cancelled or ran out of time leave the batch."""
        keep = []
        for i, row in enumerate(self.rows):
            if row.reason is None and not self._gone(row.request):
                keep.append(i)
        if len(keep) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in keep]
        self.state = self.model.reorder(self.state, torch.tensor(keep, dtype=torch.long, device=self.device)) \
            if keep else None
        if not keep:
            _trim_heap()


def drive(engines: Callable[[], list[Engine]], wake: threading.Condition, stop: threading.Event) -> None:
    """Step every engine of `engines()` in turn from the calling thread until `stop` is set, sleeping on
    `wake` (the engines' shared condition) while none has work."""
    while not stop.is_set():
        busy = False
        for engine in engines():
            busy = engine.work() or busy
        if not busy:
            with wake:
                if not stop.is_set() and not any(e.has_work for e in engines()):
                    wake.wait(timeout=0.5)
