"""ONNX (onnxruntime) and GGUF (llama.cpp) exports, run here independently of the exports' own checks:
onnxruntime on a batch size and length the export never saw; llama.cpp's greedy continuation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.conftest import assert_input_error

from lmforge.inference.loading import load_lm
from lmforge.inference.tasks import load_task_run
from lmforge.runs import open_run


def exported(cli, run, fmt, out, *flags):
    result = cli("export", "--run", run, "--format", fmt, "--out", out, "--json", *flags)
    assert result.code == 0, result.err
    summary = result.json()
    assert summary["verified"]["passed"] is True, summary
    return summary


@pytest.mark.parametrize("name", ["classify_pre", "tag_pre", "tag_bilstm", "qa_post"])
def test_task_models_run_in_onnxruntime(cli, interop_runs, tmp_path, name):
    onnxruntime = pytest.importorskip("onnxruntime")
    exported(cli, interop_runs[name], "onnx", tmp_path / "m.onnx")
    task_run = load_task_run(open_run(interop_runs[name]))
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    ids = torch.randint(7, task_run.tokenizer.vocab_size, (5, 19), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[3, 11:] = False
    feeds = {"input_ids": ids.numpy(), "attention_mask": mask.long().numpy(),
             "token_type_ids": np.zeros_like(ids.numpy())}
    theirs = torch.from_numpy(session.run(None, {n: feeds[n] for n in names})[0])
    with torch.no_grad():
        ours = task_run.model(ids, mask, torch.zeros_like(ids) if task_run.encoder else None)
    if ours.dim() == 3:
        theirs, ours = theirs[mask], ours[mask]
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=1e-4)


def test_the_gpt_forward_runs_in_onnxruntime(cli, interop_runs, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    exported(cli, interop_runs["gpt_tied_gqa"], "onnx", tmp_path / "gpt.onnx")
    ours = load_lm(open_run(interop_runs["gpt_tied_gqa"]))
    session = onnxruntime.InferenceSession(str(tmp_path / "gpt.onnx"), providers=["CPUExecutionProvider"])
    ids = torch.randint(7, ours.tokenizer.vocab_size, (3, 45), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(session.run(None, {"input_ids": ids.numpy()})[0]),
                                   ours.model(ids), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["gpt", "gpt_tied_gqa"])
def test_gguf_loads_in_llama_cpp_and_continues_as_we_do(cli, interop_runs, tmp_path, name):
    llama_cpp = pytest.importorskip("llama_cpp")
    summary = exported(cli, interop_runs[name], "gguf", tmp_path / "m.gguf")
    assert summary["verified"]["tokenizer_equal"] is True
    ours = load_lm(open_run(interop_runs[name]))
    prompt = ours.tokenizer.encode("every quiet engine sleeps")
    llm = llama_cpp.Llama(model_path=str(tmp_path / "m.gguf"), n_ctx=64, n_threads=1, verbose=False,
                          type_k=0, type_v=0)   # f32 cache, as the weights
    theirs = []
    for token in llm.generate(prompt, top_k=1, temp=0.0, repeat_penalty=1.0):
        theirs.append(int(token))
        if len(theirs) == 24:
            break
    greedy = list(prompt)
    with torch.no_grad():
        for _ in range(24):
            greedy.append(int(ours.model(torch.tensor([greedy]))[0, -1].argmax()))
    assert theirs == greedy[len(prompt):]
    assert len(set(theirs)) > 3   # sharpened weights: a real continuation, not one token repeated


def test_an_f16_gguf_differs_from_us_only_at_near_ties(cli, interop_runs, tmp_path):
    """f16 weights and activations move logits by ~0.03 on this sharp model, which flips a top-2 margin of
    0.003: the check re-reads our continuation and counts disagreements beyond such ties (none allowed)."""
    pytest.importorskip("llama_cpp")
    summary = exported(cli, interop_runs["gpt"], "gguf", tmp_path / "m.gguf", "--dtype", "f16")
    check = summary["verified"]
    assert check["next_token_differs_beyond_ties"] == 0 and check["max_logit_diff"] < 0.1
    assert summary["bytes"] < 0.6 * exported(cli, interop_runs["gpt"], "gguf", tmp_path / "f32.gguf")["bytes"]


def test_onnx_and_gguf_refuse_what_they_cannot_hold(cli, interop_runs, served_runs, tmp_path):
    assert_input_error(cli("export", "--run", interop_runs["bert_pre"], "--format", "onnx", "--out", tmp_path / "a"),
                       "exports to hf")
    assert_input_error(cli("export", "--run", served_runs["sent"], "--format", "onnx", "--out", tmp_path / "b"),
                       "no format yet")
    assert not any(tmp_path.iterdir())
