"""Export to Hugging Face transformers, checked here independently of the export's own check: the folder
loaded with `from_pretrained` gives our logits on the same tokens, its tokenizer our ids (framed as our
encoders frame them), its chat template our conversation layout, and its greedy generation ours."""

from __future__ import annotations

import json

import pytest
import torch
from tests.conftest import assert_input_error

from lmforge.inference.loading import load_lm
from lmforge.inference.tasks import load_task_run
from lmforge.runs import open_run
from lmforge.tokenization.chat import Message, load_template

transformers = pytest.importorskip("transformers")


def exported(cli, run, out, *flags):
    result = cli("export", "--run", run, "--format", "hf", "--out", out, "--json", *flags)
    assert result.code == 0, result.err
    summary = result.json()
    assert summary["verified"]["passed"] is True and summary["verified"]["tokenizer_equal"] is True, summary
    return summary


def tokens(vocab_size: int, shape=(2, 40), seed=1) -> torch.Tensor:
    return torch.randint(7, vocab_size, shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["gpt", "gpt_tied_gqa"])
def test_a_gpt_is_a_llama_with_our_logits_and_greedy_text(cli, interop_runs, tmp_path, name):
    summary = exported(cli, interop_runs[name], tmp_path / "hf")
    assert summary["architecture"] == "LlamaForCausalLM"
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "generation_config.json"} <= set(summary["files"])
    ours = load_lm(open_run(interop_runs[name]))
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    ids = tokens(ours.tokenizer.vocab_size)
    with torch.no_grad():
        expected = ours.model(ids)
        torch.testing.assert_close(hf(ids).logits, expected, atol=1e-4, rtol=1e-4)
        assert expected.std() > 0.5   # the sharpened weights make a wrong mapping visible
        prompt = ids[:1, :8]
        theirs = hf.generate(prompt, max_new_tokens=16, do_sample=False, eos_token_id=None)[0, 8:].tolist()
    greedy = prompt[0].tolist()
    with torch.no_grad():
        for _ in range(16):
            greedy.append(int(ours.model(torch.tensor([greedy]))[0, -1].argmax()))
    assert theirs == greedy[8:]
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    text = "Rivers run; 3 engines sleep under the quiet mountain."
    assert tokenizer(text)["input_ids"] == ours.tokenizer.encode(text)


def test_a_chat_run_carries_its_template(cli, served_runs, tmp_path):
    exported(cli, served_runs["chat"], tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())
    assert "chat_template" in config
    generation = json.loads((tmp_path / "hf" / "generation_config.json").read_text())
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    ours = load_lm(open_run(served_runs["chat"]))
    template = load_template(served_runs["chat"], ours.tokenizer)
    messages = [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "Where is it?"},
                {"role": "assistant", "content": "Near the river."}, {"role": "user", "content": "And then?"}]
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    rendered = rendered["input_ids"] if hasattr(rendered, "keys") else rendered
    assert list(rendered) == template.prompt([Message(**m) for m in messages])
    assert template.end_id in generation["eos_token_id"]   # a reply ends at <|end|>


@pytest.mark.parametrize("name,architecture", [("bert_pre", "RobertaPreLayerNormForMaskedLM"),
                                               ("bert_post", "BertForMaskedLM")])
def test_bert_runs_are_masked_lms_with_our_logits(cli, interop_runs, tmp_path, name, architecture):
    assert exported(cli, interop_runs[name], tmp_path / "hf")["architecture"] == architecture
    ours = load_lm(open_run(interop_runs[name]))
    hf = getattr(transformers, architecture).from_pretrained(tmp_path / "hf").eval()
    ids = tokens(ours.tokenizer.vocab_size)
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[1, 30:] = False
    ids[1, 30:] = ours.tokenizer.pad_id
    segments = (torch.arange(40) >= 20).long().expand(2, 40)
    with torch.no_grad():
        expected = ours.model(ids, mask, segments)
        got = hf(input_ids=ids, attention_mask=mask.long(), token_type_ids=segments).logits
    torch.testing.assert_close(got[mask], expected[mask], atol=1e-4, rtol=1e-4)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    pair = tokenizer("the river", "runs far")
    a, b = ours.tokenizer.encode("the river"), ours.tokenizer.encode("runs far")
    t = ours.tokenizer
    assert pair["input_ids"] == [t.cls_id, *a, t.sep_id, *b, t.sep_id]
    assert pair["token_type_ids"] == [0] * (len(a) + 2) + [1] * (len(b) + 1)


@pytest.mark.parametrize("name,architecture", [
    ("classify_pre", "RobertaPreLayerNormForSequenceClassification"),
    ("classify_post", "BertForSequenceClassification"),
    ("tag_pre", "RobertaPreLayerNormForTokenClassification"),
    ("qa_post", "BertForQuestionAnswering")])
def test_task_runs_become_their_hf_classes(cli, interop_runs, tmp_path, name, architecture):
    assert exported(cli, interop_runs[name], tmp_path / "hf")["architecture"] == architecture
    task_run = load_task_run(open_run(interop_runs[name]))
    hf = getattr(transformers, architecture).from_pretrained(tmp_path / "hf").eval()
    ids = tokens(task_run.tokenizer.vocab_size, (3, 24))
    ids[:, 0] = task_run.tokenizer.cls_id
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[2, 16:] = False
    ids[2, 16:] = task_run.tokenizer.pad_id
    with torch.no_grad():
        expected = task_run.model(ids, mask, torch.zeros_like(ids))
        out = hf(input_ids=ids, attention_mask=mask.long())
    got = torch.stack([out.start_logits, out.end_logits], -1) if name.startswith("qa") else out.logits
    if expected.dim() == 3:
        got, expected = got[mask], expected[mask]
    assert expected.std() > 0.1
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    if not name.startswith("qa"):
        assert list(hf.config.id2label.values()) == task_run.labels.names


def test_formats_that_cannot_hold_a_run_are_refused_naming_those_that_can(cli, interop_runs, served_runs, tmp_path):
    assert_input_error(cli("export", "--run", interop_runs["bert_rope"], "--format", "hf", "--out", tmp_path / "a"),
                       "rotary positions", "no format yet")
    assert_input_error(cli("export", "--run", interop_runs["tag_bilstm"], "--format", "hf", "--out", tmp_path / "b"),
                       "bilstm", "onnx")
    assert_input_error(cli("export", "--run", interop_runs["bert_pre"], "--format", "gguf", "--out", tmp_path / "c"),
                       "cannot be exported as gguf", "hf")
    assert_input_error(cli("export", "--run", served_runs["kn3"], "--format", "hf", "--out", tmp_path / "d"),
                       "ngram export")
    assert not any(tmp_path.iterdir())   # nothing written


def test_an_existing_output_is_kept_without_overwrite(cli, interop_runs, tmp_path):
    out = tmp_path / "hf"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert_input_error(cli("export", "--run", interop_runs["gpt"], "--format", "hf", "--out", out), "--overwrite")
    assert (out / "mine.txt").read_text() == "keep me"
    exported(cli, interop_runs["gpt"], out, "--overwrite")
    assert not (out / "mine.txt").exists() and (out / "lmforge_export.json").exists()
