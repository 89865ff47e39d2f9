"""The routes of the other kinds of run, live: tagging and QA baselines, word vectors, a translation run that
learned the copy task; and /health answering 503 until the runs are loaded."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.conftest import COPY_GRU, COPY_TRAIN
from tests.serving.live import start_server

from lmforge.cli import main
from lmforge.serving.app import create_app
from lmforge.serving.catalog import open_models


@pytest.fixture(scope="module")
def route_runs(prepared, copy_pairs, tmp_path_factory):
    root = tmp_path_factory.mktemp("routes")
    tags = root / "tags.conll"
    tags.write_text("".join(f"{w}\t{'N' if w in ('river', 'city') else 'V'}\n" + ("\n" if i % 4 == 3 else "")
                            for i, w in enumerate(["river", "runs", "city", "sleeps"] * 30)))
    assert main(["finetune", "--task", "tag", "--model", "most-frequent-tag", "--data", str(tags),
                 "--out", str(root / "pos")]) == 0
    qa = root / "qa.jsonl"
    context = "The river runs under the old bridge. The city sleeps in winter."
    qa.write_text("".join(json.dumps({"question": q, "context": context, "answer": a, "answer_start": context.find(a)})
                          + "\n" for q, a in [("Where does the river run?", "under the old bridge"),
                                              ("When does the city sleep?", "in winter")] * 10))
    assert main(["finetune", "--task", "qa", "--model", "overlap", "--data", str(qa), "--out", str(root / "qa")]) == 0
    assert main(["embed", "train", str(prepared["data"]), "--dim", "8", "--epochs", "1", "--min-count", "1",
                 "--workers", "1", "--out", str(root / "w2v")]) == 0
    assert main(["train", "--data", str(copy_pairs["data"]), "--tokenizer", str(copy_pairs["tokenizer"]), *COPY_TRAIN,
                 *COPY_GRU, "--max-steps", "300", "--eval-every", "100", "--out", str(root / "copy")]) == 0
    return root


@pytest.fixture(scope="module")
def server(route_runs):
    live = start_server([route_runs / name for name in ("pos", "qa", "w2v", "copy")], threads=1)
    yield live
    live.stop()


def test_tag_answer_embed_and_translate(server):
    r = httpx.post(server.url + "/v1/tag", json={"model": "pos", "input": "river sleeps"})
    assert r.status_code == 200 and r.json()["data"][0]["tags"] == ["N", "V"]
    r = httpx.post(server.url + "/v1/answer", json={"model": "qa", "input": {
        "question": "When does the city sleep?", "context": "The river runs under the old bridge. The city sleeps in "
                                                          "winter."}})
    assert r.status_code == 200 and r.json()["data"][0]["answer"]
    r = httpx.post(server.url + "/v1/embeddings", json={"model": "w2v", "input": ["the river", "zzzz"]})
    vectors = [d["embedding"] for d in r.json()["data"]]
    assert len(vectors[0]) == 8 and abs(sum(v * v for v in vectors[0]) - 1) < 1e-5 and not any(vectors[1])
    r = httpx.post(server.url + "/v1/translate", json={"model": "copy", "input": ["a b c", "d e f g"]})
    assert r.status_code == 200
    assert [d["translation"] for d in r.json()["data"]] == ["a b c", "d e f g"]
    r = httpx.post(server.url + "/v1/completions", json={"model": "copy", "prompt": "a"})
    assert r.status_code == 400 and "/v1/translate" in r.json()["error"]["message"]


def test_health_is_503_until_the_runs_are_loaded(route_runs):
    app = create_app(open_models([route_runs / "pos"]), load=False)
    with TestClient(app) as client:
        assert client.get("/health").status_code == 503
        r = client.post("/v1/tag", json={"model": "pos", "input": "river"})
        assert r.status_code == 503 and r.headers["retry-after"]
        app.state.server.load_all()
        assert client.get("/health").json()["status"] == "ok"
        assert client.post("/v1/tag", json={"model": "pos", "input": "river"}).status_code == 200
