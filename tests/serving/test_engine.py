"""Continuous batching against the plain decoder: batched greedy requests give the tokens of single ones (and
of `generate`), a seeded sampled request gives the same text alone and in a busy batch, a cancelled request
leaves the batch at once, and a full queue refuses."""

from __future__ import annotations

import threading
import time

import pytest

from lmforge.inference.decoding import generate
from lmforge.inference.loading import text_decoder
from lmforge.inference.sampling import SamplingConfig
from lmforge.serving.engine import Engine, QueueFull, Request

PROMPTS = ["The river", "A quiet engine reads", "Every", "Old mountain light and shadow sleeps"]


class Collector:
    def __init__(self):
        self.text, self.reason, self.done = "", None, threading.Event()

    def __call__(self, event, payload):
        if event == "text":
            self.text += payload[0]
        else:
            self.reason = payload
            self.done.set()


def run_requests(engine: Engine, decoder, prompts, sampling, seeds, max_tokens=40):
    """The first request starts alone; the others join its running batch."""
    collectors, requests = [], []
    for prompt, seed in zip(prompts, seeds):
        collector = Collector()
        request = Request(decoder.encode(prompt), max_tokens, sampling, seed, [], {decoder.eos_id}, collector)
        engine.submit(request)
        collectors.append(collector)
        requests.append(request)
        deadline = time.time() + 10
        while not request.completion_ids and not collector.done.is_set() and time.time() < deadline:
            time.sleep(0.0002)
    for collector in collectors:
        assert collector.done.wait(30)
    return requests, collectors


@pytest.fixture(scope="module", params=["gpt", "gru", "kn3"])
def decoder(request, served_runs):
    return text_decoder(served_runs[request.param])


def test_batched_greedy_equals_single_and_generate(decoder):
    greedy = SamplingConfig(temperature=0)
    engine = Engine(decoder.model, decoder.decode, lambda i: str(i), max_batch=8)
    try:
        together, _ = run_requests(engine, decoder, PROMPTS, greedy, [None] * 4)
        alone = [run_requests(engine, decoder, [p], greedy, [None])[0][0] for p in PROMPTS]
    finally:
        engine.close()
    for a, b, prompt in zip(together, alone, PROMPTS):
        assert a.completion_ids == b.completion_ids
        reference = generate(decoder.model, decoder.encode(prompt), max_new_tokens=40, sampling=greedy, seed=None,
                             eos_id=decoder.eos_id, decode=decoder.decode)
        assert a.completion_ids == reference.token_ids
    assert engine.stats.occupancy > 1   # the four shared steps


def test_seeded_sample_is_the_same_alone_and_in_a_busy_batch(decoder):
    sampling = SamplingConfig(temperature=1.0, top_p=0.9)
    engine = Engine(decoder.model, decoder.decode, lambda i: str(i), max_batch=8)
    try:
        alone = run_requests(engine, decoder, [PROMPTS[1]], sampling, [7], max_tokens=25)[0][0]
        # the same request joins a batch already running others, each with its own seed
        busy, _ = run_requests(engine, decoder, [PROMPTS[0], PROMPTS[2], PROMPTS[1], PROMPTS[3]], sampling,
                               [1, 2, 7, 3], max_tokens=25)
    finally:
        engine.close()
    assert busy[2].completion_ids == alone.completion_ids
    assert busy[0].completion_ids != busy[2].completion_ids or busy[1].completion_ids != busy[2].completion_ids


def test_cancelled_request_leaves_the_batch(served_runs):
    decoder = text_decoder(served_runs["gpt"])
    engine = Engine(decoder.model, decoder.decode, str, max_batch=2)
    try:
        collector = Collector()
        request = Request(decoder.encode("The"), 60, SamplingConfig(temperature=1.0), 1, [], set(), collector)
        engine.submit(request)
        deadline = time.time() + 10
        while engine.running == 0 and time.time() < deadline:
            time.sleep(0.001)
        request.cancelled = True
        assert collector.done.wait(5)
        assert collector.reason in ("cancelled", "length")
        time.sleep(0.05)
        assert engine.running == 0
    finally:
        engine.close()


def test_full_queue_refuses(served_runs):
    decoder = text_decoder(served_runs["gpt"])
    engine = Engine(decoder.model, decoder.decode, str, max_batch=1, max_queue=1)
    engine._stop = True   # the engine thread exits: nothing leaves the queue
    with engine._wake:
        engine._wake.notify()
    engine.thread.join(5)
    engine.submit(Request([1], 1, SamplingConfig(), None, [], set(), lambda *a: None))
    with pytest.raises(QueueFull):
        engine.submit(Request([1], 1, SamplingConfig(), None, [], set(), lambda *a: None))


def test_stop_string_never_leaks_into_streamed_text(served_runs):
    decoder = text_decoder(served_runs["gpt"])
    greedy = SamplingConfig(temperature=0)
    full = generate(decoder.model, decoder.encode("The"), max_new_tokens=30, sampling=greedy, seed=None,
                    eos_id=decoder.eos_id, decode=decoder.decode).text
    stop = full[5:8]
    assert len(stop) == 3
    engine = Engine(decoder.model, decoder.decode, str)
    try:
        collector = Collector()
        engine.submit(Request(decoder.encode("The"), 30, greedy, None, [stop], {decoder.eos_id}, collector))
        assert collector.done.wait(10)
    finally:
        engine.close()
    assert collector.reason == "stop"
    assert collector.text == full[:full.find(stop)]
