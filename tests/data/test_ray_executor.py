"""--executor ray: prepare's per-input phase and tokenize's per-file encoding as tasks on a local 2-CPU Ray
instance give the bytes --workers 2 and the serial tokenizer give. Ray runs in a subprocess, so this
test process (which forks --workers pools elsewhere) never starts it."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest
from tests.conftest import assert_input_error, write_corpus

TIMINGS = ("seconds", "mb_per_s", "phase1_cpu_seconds")


def lmforge(*args) -> None:
    done = subprocess.run([sys.executable, "-m", "lmforge", *map(str, args)], capture_output=True, timeout=300,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1", "RAY_DEDUP_LOGS": "0"})
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def stats_without_timings(folder) -> dict:
    stats = json.loads((folder / "stats.json").read_text())
    return {k: v for k, v in stats.items() if k not in TIMINGS}


@pytest.mark.slow
def test_ray_tasks_give_the_output_of_local_workers(tmp_path):
    pytest.importorskip("ray")
    inputs = [write_corpus(tmp_path / f"in{i}", docs=40, seed=i) for i in range(2)]   # 6 input files
    lmforge("prepare", *inputs, "--out", tmp_path / "local", "--workers", "2", "--val-fraction", "0.2")
    lmforge("prepare", *inputs, "--out", tmp_path / "ray", "--workers", "2", "--val-fraction", "0.2",
            "--executor", "ray")
    local_files = sorted(p.name for p in (tmp_path / "local" / "clean").iterdir())
    assert local_files == sorted(p.name for p in (tmp_path / "ray" / "clean").iterdir()) and local_files
    for name in local_files:
        assert (tmp_path / "local" / "clean" / name).read_bytes() == (tmp_path / "ray" / "clean" / name).read_bytes()
    assert stats_without_timings(tmp_path / "local") == stats_without_timings(tmp_path / "ray")
    lmforge("tokenizer", "train", tmp_path / "local", "--kind", "bpe", "--vocab-size", "300", "--out", tmp_path / "tok")
    lmforge("tokenize", tmp_path / "local", "--tokenizer", tmp_path / "tok", "--out", tmp_path / "t-local")
    lmforge("tokenize", tmp_path / "local", "--tokenizer", tmp_path / "tok", "--out", tmp_path / "t-ray",
            "--executor", "ray")
    for name in ("train.bin", "val.bin", "meta.json"):
        assert (tmp_path / "t-local" / name).read_bytes() == (tmp_path / "t-ray" / name).read_bytes(), name
    texts = [json.loads(line)["text"] for line in gzip.open(tmp_path / "ray" / "clean" / local_files[0], "rt")]
    assert texts   # a real corpus went through


def test_without_ray_the_executor_is_refused_with_the_install_line(cli, tmp_path, monkeypatch, prepared):
    monkeypatch.setitem(sys.modules, "ray", None)   # import ray now fails
    corpus = write_corpus(tmp_path / "in")
    assert_input_error(cli("prepare", corpus, "--out", tmp_path / "out", "--executor", "ray"), "pip install",
                       "--workers")
    assert not (tmp_path / "out").exists()
    assert_input_error(cli("tokenize", prepared["data"], "--tokenizer", prepared["tokenizer"], "--out",
                           tmp_path / "shards", "--executor", "ray"), "pip install")
    assert not (tmp_path / "shards").exists()


def test_an_address_nobody_answers_is_refused_at_once(cli, tmp_path):
    pytest.importorskip("ray")
    corpus = write_corpus(tmp_path / "in")
    assert_input_error(cli("prepare", corpus, "--out", tmp_path / "out", "--executor", "ray", "--ray-address",
                           "127.0.0.1:1"), "nothing answers", "ray start --head")
    assert not (tmp_path / "out").exists()
