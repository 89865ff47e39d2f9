"""Runs to export, trained for a few steps on the session corpus and then given large random weights (a
barely trained model predicts nearly the same token everywhere, which would hide a wrong mapping)."""

from __future__ import annotations

import json
import random

import pytest
import torch
from tests.conftest import WORDS

from lmforge.artifacts import save_weights
from lmforge.cli import main
from lmforge.inference.loading import load_lm
from lmforge.inference.tasks import load_task_run
from lmforge.runs import open_run

SMALL = ["--n-layers", "2", "--d-model", "32", "--n-heads", "4", "--max-seq-len", "48", "--max-steps", "2",
         "--batch-size", "4", "--warmup-steps", "1", "--threads", "1", "--eval-every", "10", "--eval-windows", "2"]
FINETUNE = ["--epochs", "1", "--batch-size", "16", "--threads", "1", "--max-len", "48"]


def sharpen(model: torch.nn.Module, seed: int = 0) -> None:
    """Weights of spread 0.3 (norm gains around 1), so logits differ clearly between tokens and positions."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            param.copy_(1 + 0.2 * noise if "norm" in name and name.endswith("weight") else 0.3 * noise)


def sharpened_lm(run_dir):
    loaded = load_lm(open_run(run_dir))
    sharpen(loaded.model)
    save_weights(loaded.model, run_dir / "model.safetensors")
    return run_dir


def sharpened_task(run_dir):
    task_run = load_task_run(open_run(run_dir))
    sharpen(task_run.model)
    save_weights(task_run.model, run_dir / "model.safetensors")
    return run_dir


def _keyword_data(folder):
    rng = random.Random(0)
    folder.mkdir()
    for split, n in (("train", 64), ("valid", 16)):
        with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as handle:
            for _ in range(n):
                label = rng.choice(["pos", "neg", "mixed"])
                words = [rng.choice(WORDS) for _ in range(rng.randint(3, 8))] + [label]
                handle.write(json.dumps({"text": " ".join(words), "label": label}) + "\n")
    return folder


def _tag_data(folder):
    rng = random.Random(0)
    folder.mkdir()
    for split, n in (("train", 40), ("valid", 10)):
        lines = []
        for _ in range(n):
            lines += [f"{w}\t{'X' if WORDS.index(w) % 2 else 'Y'}" for w in rng.choices(WORDS, k=rng.randint(3, 8))]
            lines.append("")
        (folder / f"{split}.conll").write_text("\n".join(lines), encoding="utf-8")
    return folder


def _qa_data(folder):
    from tests.tasks.test_qa import planted

    folder.mkdir()
    for split, (n, seed) in (("train", (24, 0)), ("valid", (8, 1))):
        with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(record) + "\n" for record in planted(n, seed))
    return folder


@pytest.fixture(scope="session")
def interop_runs(prepared, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("interop")
    shards = str(prepared["shards"])
    runs = {}
    for name, extra in {"gpt": [], "gpt_tied_gqa": ["--tie-embeddings", "--n-kv-heads", "2"],
                        "bert_pre": ["--model", "bert"], "bert_post": ["--model", "bert", "--norm-position", "post"],
                        "bert_rope": ["--model", "bert", "--positions", "rope"]}.items():
        assert main(["train", "--data", shards, "--out", str(root / name), *SMALL, *extra]) == 0
        runs[name] = sharpened_lm(root / name)
    keywords, tags, qa = _keyword_data(root / "keywords"), _tag_data(root / "tags"), _qa_data(root / "qa")
    for name, (task, init, data) in {"classify_pre": ("classify", "bert_pre", keywords),
                                     "classify_post": ("classify", "bert_post", keywords),
                                     "tag_pre": ("tag", "bert_pre", tags),
                                     "qa_post": ("qa", "bert_post", qa)}.items():
        assert main(["finetune", "--task", task, "--init", str(root / init), "--data", str(data),
                     "--out", str(root / name), *FINETUNE]) == 0
        runs[name] = sharpened_task(root / name)
    assert main(["finetune", "--task", "tag", "--model", "bilstm", "--tokenizer", str(prepared["tokenizer"]),
                 "--data", str(tags), "--out", str(root / "tag_bilstm"), *FINETUNE]) == 0
    runs["tag_bilstm"] = sharpened_task(root / "tag_bilstm")
    return {**runs, "root": root}
