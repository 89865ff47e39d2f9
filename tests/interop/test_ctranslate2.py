"""The translation Transformer exported to CTranslate2 (through its own model specification and converter),
translating as lmforge does: greedy output equal on in-domain sentences, checked here with
`ctranslate2.Translator` against `lmforge translate --beam 1`."""

from __future__ import annotations

import pytest
from tests.conftest import COPY_GRU, COPY_TRAIN, COPY_TRANSFORMER, assert_input_error

from lmforge.cli import main

ctranslate2 = pytest.importorskip("ctranslate2")


@pytest.fixture(scope="module")
def translation_runs(copy_pairs, tmp_path_factory):
    root = tmp_path_factory.mktemp("ct2")
    common = ["--data", str(copy_pairs["data"]), "--tokenizer", str(copy_pairs["tokenizer"]), *COPY_TRAIN]
    assert main(["train", *common, *COPY_TRANSFORMER, "--max-steps", "300", "--out", str(root / "tfm")]) == 0
    assert main(["train", *common, *COPY_GRU, "--max-steps", "5", "--out", str(root / "gru")]) == 0
    assert main(["train", *common, *COPY_TRANSFORMER, "--norm-position", "post", "--scale-embeddings", "--lr", "1e-3",
                 "--max-steps", "100", "--out", str(root / "post")]) == 0
    return {"tfm": root / "tfm", "gru": root / "gru", "post": root / "post"}


def test_ctranslate2_translates_as_we_do(cli, translation_runs, tmp_path):
    result = cli("export", "--run", translation_runs["tfm"], "--format", "ctranslate2", "--out", tmp_path / "ct2",
                 "--json")
    assert result.code == 0, result.err
    check = result.json()["verified"]
    assert check["passed"] is True and check["greedy_translations_equal"].split("/")[0] == "21"
    sentences = ["a b c d", "p o n m l", "c c a"]
    ours = cli("translate", "--run", translation_runs["tfm"], *sentences, "--beam", "1", "--json").json()
    ours = [row["text"] for row in ours["translations"]]
    assert ours == sentences   # the copy task is learned: a real translation is compared
    from lmforge.inference.translation import open_seq2seq

    loaded = open_seq2seq(translation_runs["tfm"], "translate")
    vocab = {i: t for t, i in loaded.src.hf.get_vocab(with_added_tokens=True).items()}
    translator = ctranslate2.Translator(str(tmp_path / "ct2"), device="cpu")
    sources = [[vocab[i] for i in loaded.src.encode(s)] + ["<|eos|>"] for s in sentences]
    theirs = [loaded.tgt.decode([loaded.tgt.hf.token_to_id(t) for t in r.hypotheses[0]])
              for r in translator.translate_batch(sources, beam_size=1)]
    assert theirs == ours


def test_a_post_norm_transformer_exports_with_the_post_norm_layout(cli, translation_runs, tmp_path):
    result = cli("export", "--run", translation_runs["post"], "--format", "ctranslate2", "--out", tmp_path / "ct2",
                 "--json")
    assert result.code == 0, result.err
    summary = result.json()
    assert summary["architecture"].startswith("CTranslate2 TransformerSpec (post-norm")
    assert summary["verified"]["passed"] is True   # greedy equal on every sample and validation source


def test_other_translation_models_are_refused(cli, translation_runs, tmp_path):
    assert_input_error(cli("export", "--run", translation_runs["gru"], "--format", "ctranslate2", "--out",
                           tmp_path / "x"), "cannot be exported as ctranslate2")
    assert not (tmp_path / "x").exists()
