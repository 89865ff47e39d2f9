"""The server through real HTTP on a free port: the official `openai` client unchanged (completions, chat
streamed and not, embeddings), the other routes, auth, and every bad input answered with a 4xx and a reason
in OpenAI's error envelope, never a 5xx."""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest
from tests.serving.live import start_server

KEY = {"Authorization": "Bearer sekret"}


@pytest.fixture(scope="module")
def client(live):
    return openai.OpenAI(base_url=live.url + "/v1", api_key="sekret", max_retries=0)


def test_openai_client_completions_chat_and_embeddings(client):
    models = {m.id for m in client.models.list()}
    assert {"chat", "gpt", "gru", "kn3", "sent"} <= models
    done = client.completions.create(model="gpt", prompt="The river", max_tokens=8, temperature=0, logprobs=2)
    choice = done.choices[0]
    assert choice.finish_reason in ("stop", "length") and done.usage.completion_tokens <= 8
    assert len(choice.logprobs.tokens) == done.usage.completion_tokens
    again = client.completions.create(model="gpt", prompt="The river", max_tokens=8, temperature=0)
    assert again.choices[0].text == choice.text

    chat = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hello"}],
                                          max_tokens=12, temperature=0)
    reply = chat.choices[0].message
    assert reply.role == "assistant" and chat.choices[0].finish_reason in ("stop", "length")

    stream = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hello"}],
                                            max_tokens=12, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    pieces, reasons, usage = [], [], None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            pieces.append(c.delta.content or "")
            reasons.append(c.finish_reason)
    assert "".join(pieces) == reply.content        # the stream adds up to the whole answer
    assert reasons[-1] in ("stop", "length") and usage.completion_tokens == chat.usage.completion_tokens

    vectors = client.embeddings.create(model="gpt", input=["the river", "a quiet engine"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 32
    recurrent = client.embeddings.create(model="gru", input=["the river"])   # (outputs, state) from its hidden
    assert len(recurrent.data[0].embedding) == 32
    assert abs(sum(v * v for v in recurrent.data[0].embedding) - 1) < 1e-4


def test_chat_run_answers_what_it_was_taught(client):
    """The chat run learned six greetings and their replies; greedy decoding gives the taught reply."""
    chat = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "what is your name"}],
                                          max_tokens=20, temperature=0)
    assert chat.choices[0].message.content.strip() == "my name is forge"
    assert chat.choices[0].finish_reason == "stop"


def test_n_seed_stop_and_logprobs(client):
    one = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}], max_tokens=10,
                                         temperature=1.0, seed=5, n=3, logprobs=True, top_logprobs=2)
    assert [c.index for c in one.choices] == [0, 1, 2]
    again = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}], max_tokens=10,
                                           temperature=1.0, seed=5, n=3)
    assert [c.message.content for c in one.choices] == [c.message.content for c in again.choices]
    content = one.choices[0].logprobs.content
    assert content and all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in content)
    full = client.completions.create(model="gpt", prompt="The", max_tokens=20, temperature=0).choices[0].text
    stop = full[4:6]
    stopped = client.completions.create(model="gpt", prompt="The", max_tokens=20, temperature=0, stop=[stop])
    assert stopped.choices[0].text == full[:full.find(stop)] and stopped.choices[0].finish_reason == "stop"


def test_task_ngram_and_score_routes(live):
    r = httpx.post(live.url + "/v1/classify", headers=KEY, json={"model": "sent", "input": ["it was great and lovely"]})
    assert r.status_code == 200 and r.json()["data"][0]["label"] == "pos"
    r = httpx.post(live.url + "/v1/score", headers=KEY, json={"model": "kn3", "input": "the river runs"})
    assert r.status_code == 200 and r.json()["data"][0]["logprob"] < 0
    r = httpx.post(live.url + "/v1/score", headers=KEY, json={"model": "gpt", "input": "the river runs"})
    data = r.json()["data"][0]
    assert abs(sum(data["token_logprobs"]) - data["logprob"]) < 1e-3
    r = httpx.post(live.url + "/v1/completions", headers=KEY, json={"model": "kn3", "prompt": "the", "max_tokens": 5})
    assert r.status_code == 200 and r.json()["choices"][0]["text"] is not None


@pytest.mark.parametrize("route, body, status, needle", [
    ("/v1/chat/completions", {"model": "nope", "messages": [{"role": "user", "content": "hi"}]}, 404, "chat, gpt"),
    ("/v1/chat/completions", {"model": "chat", "messages": [{"role": "robot", "content": "hi"}]}, 400, "role"),
    ("/v1/chat/completions", {"model": "chat", "messages": []}, 400, "messages"),
    ("/v1/completions", {"model": "gpt", "prompt": "x", "max_tokens": 5000}, 400, "limit"),
    ("/v1/completions", {"model": "gpt", "prompt": "x", "max_tokens": 64}, 400, "context"),
    ("/v1/chat/completions", {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}, 400,
     "/v1/completions"),
    ("/v1/classify", {"model": "gpt", "input": "x"}, 400, "serves"),
    ("/v1/classify", {"model": "sent", "input": ""}, 400, "non-empty"),
    ("/v1/embeddings", {"model": "sent", "input": "x"}, 400, "/v1/classify"),
])
def test_bad_requests_get_a_4xx_with_the_reason(live, route, body, status, needle):
    r = httpx.post(live.url + route, headers=KEY, json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert needle in error["message"] and error["type"]
    assert "/tmp" not in r.text and "Traceback" not in r.text


def test_invalid_json_auth_and_health(live):
    r = httpx.post(live.url + "/v1/completions", headers=KEY, content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    assert httpx.get(live.url + "/v1/models").status_code == 401
    assert httpx.get(live.url + "/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=live.url + "/v1", api_key="wrong", max_retries=0).models.list()
    assert httpx.get(live.url + "/health").json()["status"] == "ok"
    text = httpx.get(live.url + "/metrics", headers=KEY).text
    assert "lmforge_requests_total" in text and "lmforge_batch_occupancy" in text
    r = httpx.post(live.url + "/v1/completions", headers=KEY, content=b"x" * (2 << 20))
    assert r.status_code == 413


def test_long_prompt_is_cut_from_the_left_and_says_so(live):
    prompt = "the river runs under the old mountain " * 20
    r = httpx.post(live.url + "/v1/completions", headers=KEY,
                   json={"model": "gpt", "prompt": prompt, "max_tokens": 10, "temperature": 0})
    body = r.json()
    assert r.status_code == 200 and body["lmforge"]["prompt_truncated_tokens"] > 0
    assert body["usage"]["prompt_tokens"] + 10 <= 64


def test_disconnect_frees_the_slot_and_full_queue_is_429(served_runs):
    server = start_server([served_runs["gru"]], max_batch=1, max_queue=1, threads=1)
    try:
        engine = server.app.state.server.models["gru"].engine
        body = {"model": "gru", "prompt": "The", "max_tokens": 1024, "min_tokens": 1024, "stream": True,
                "temperature": 1.0}
        with httpx.stream("POST", server.url + "/v1/completions", json=body) as response:
            next(response.iter_lines())
        deadline = time.time() + 5
        while engine.running and time.time() < deadline:
            time.sleep(0.01)
        assert engine.running == 0
        assert engine.stats.generated < 1024               # the client went away: the row left the batch early

        statuses = []

        def ask():
            statuses.append(httpx.post(server.url + "/v1/completions", timeout=60,
                                       json={**body, "stream": False, "max_tokens": 400}))
        threads = [threading.Thread(target=ask) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in statuses)
        assert 429 in codes and 200 in codes and set(codes) <= {200, 429}
        refused = next(r for r in statuses if r.status_code == 429)
        assert refused.headers["retry-after"] == "1" and refused.json()["error"]["type"] == "rate_limit_error"
    finally:
        server.stop()


def test_serve_refuses_a_directory_that_is_not_a_run_and_a_port_in_use(cli, tmp_path, live):
    from tests.conftest import assert_input_error

    assert_input_error(cli("serve", tmp_path), "not a run directory")
    port = live.port
    result = cli("serve", live.app.state.server.models["gpt"].run.path, "--port", port)
    assert_input_error(result, f"--port {port}", "cannot listen")


def test_sse_chunks_are_openai_chunks(live):
    body = {"model": "gpt", "prompt": "The", "max_tokens": 6, "stream": True, "temperature": 0}
    with httpx.stream("POST", live.url + "/v1/completions", headers=KEY, json=body) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_a_request_past_its_timeout_is_504_and_leaves_the_batch(served_runs):
    from lmforge.serving.generation import Limits

    server = start_server([served_runs["gru"]], threads=1, limits=Limits(timeout=0.05))
    try:
        body = {"model": "gru", "prompt": "The", "max_tokens": 1024, "min_tokens": 1024}
        r = httpx.post(server.url + "/v1/completions", json=body, timeout=30)
        assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
        engine = server.app.state.server.models["gru"].engine
        deadline = time.time() + 5
        while engine.running and time.time() < deadline:
            time.sleep(0.01)
        assert engine.running == 0 and engine.stats.generated < 1024
    finally:
        server.stop()
