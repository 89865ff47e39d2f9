"""Import of a Hugging Face Llama folder: ours exported and brought back (identical weights), and one
made by transformers itself with a tokenizer whose special tokens are not ours; bad folders refused."""

from __future__ import annotations

import json

import pytest
import torch
from tests.conftest import assert_input_error

from lmforge.artifacts import read_json
from lmforge.inference.loading import load_lm
from lmforge.runs import open_run

transformers = pytest.importorskip("transformers")


def test_export_then_import_gives_back_the_same_weights_and_text(cli, interop_runs, tmp_path):
    assert cli("export", "--run", interop_runs["gpt"], "--format", "hf", "--out", tmp_path / "hf").code == 0
    result = cli("import", tmp_path / "hf", "--out", tmp_path / "back", "--json")
    assert result.code == 0, result.err
    assert result.json()["verified"]["passed"] is True
    original, back = load_lm(open_run(interop_runs["gpt"])), load_lm(open_run(tmp_path / "back"))
    for name, tensor in original.model.state_dict().items():
        assert torch.equal(tensor, back.model.state_dict()[name]), name
    args = ["--prompt", "the river", "--max-new-tokens", "12", "--temperature", "0", "--json"]
    first = cli("generate", "--run", interop_runs["gpt"], *args).json()
    again = cli("generate", "--run", tmp_path / "back", *args).json()
    assert first == again
    # the same tokenizer bytes: the imported run reads the original's shards and scores them the same
    data = open_run(interop_runs["gpt"]).contract.shards
    scores = [cli("eval", "--run", run, "--data", data, "--json").json()["val_loss"]
              for run in (interop_runs["gpt"], tmp_path / "back")]
    assert scores[0] == pytest.approx(scores[1], rel=1e-6)
    assert_input_error(cli("eval", "--run", tmp_path / "back"), "--data SHARDS")


def foreign_llama(folder, tie: bool = False):
    """A Llama saved by transformers, with a BPE tokenizer of its own (<s>, </s>, <unk>)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    words = "the river runs under the old mountain while every quiet engine sleeps near the blue stream".split()
    tokenizer.train_from_iterator([" ".join(words[i:] + words[:i]) for i in range(len(words))] * 20,
                                  trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>", "<s>", "</s>"]))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                                unk_token="<unk>")
    config = transformers.LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                      tie_word_embeddings=tie, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.3)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return model, fast


@pytest.mark.parametrize("tie", [False, True])
def test_a_llama_saved_by_transformers_imports_with_its_own_special_tokens(cli, tmp_path, tie):
    model, fast = foreign_llama(tmp_path / "hf", tie)
    result = cli("import", tmp_path / "hf", "--out", tmp_path / "run", "--json")
    assert result.code == 0, result.err
    summary = result.json()
    assert summary["verified"]["passed"] is True and summary["special_tokens"]["eos"] == "</s>"
    ours = load_lm(open_run(tmp_path / "run"))
    assert ours.tokenizer.eos_id == fast.eos_token_id and ours.tokenizer.kind == "foreign-bpe"
    text = "the quiet river runs"
    assert ours.tokenizer.encode(text) == fast(text, add_special_tokens=False)["input_ids"]
    ids = torch.randint(3, 120, (2, 20), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(ours.model(ids), model(ids).logits, atol=1e-4, rtol=1e-4)
    generated = cli("generate", "--run", tmp_path / "run", "--prompt", text, "--max-new-tokens", "8",
                    "--temperature", "0", "--json")
    assert generated.code == 0, generated.err


def test_folders_that_are_not_a_llama_are_refused(cli, tmp_path):
    foreign_llama(tmp_path / "hf")
    config = read_json(tmp_path / "hf" / "config.json")
    cases = {"bert": {**config, "model_type": "bert", "architectures": ["BertForMaskedLM"]},
             "wider": {**config, "intermediate_size": 96},
             "scaled": {**config, "rope_scaling": {"rope_type": "linear", "factor": 2.0}}}
    needles = {"bert": "Llama layout", "wider": "do not match config.json", "scaled": "RoPE scaling"}
    for name, changed in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        for file in (tmp_path / "hf").iterdir():
            (folder / file.name).write_bytes(file.read_bytes())
        (folder / "config.json").write_text(json.dumps(changed))
        assert_input_error(cli("import", folder, "--out", tmp_path / f"run-{name}"), needles[name])
        assert not (tmp_path / f"run-{name}").exists()
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps(config))
    (pickled / "pytorch_model.bin").write_bytes(b"not read")
    assert_input_error(cli("import", pickled, "--out", tmp_path / "run-pickled"), "never unpickles",
                       "safe_serialization=True")
    assert_input_error(cli("import", tmp_path / "nothing", "--out", tmp_path / "run-none"), "no config.json")
