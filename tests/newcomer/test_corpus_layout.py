"""What a file is: a one-sentence-a-line text file is one document a line (with a validation split and its
short sentences kept), and the validation sample during training is spread over the whole split."""

import json

import numpy as np

from conftest import TINY_MODEL, TINY_TRAIN, WORDS
from lmforge.data.prepare import PrepareConfig, prepare_corpus
from lmforge.training.batches import spread_windows


def sentence_lines(n: int) -> str:
    rng = np.random.default_rng(0)
    return "".join(" ".join(rng.choice(WORDS, size=rng.integers(2, 9))).capitalize() + ".\n" for _ in range(n))


def test_a_one_sentence_a_line_file_is_one_document_a_line(tmp_path):
    (tmp_path / "sentences.txt").write_text(sentence_lines(400))
    stats = prepare_corpus([tmp_path / "sentences.txt"], tmp_path / "out", PrepareConfig(val_fraction=0.05))
    short = sum(1 for line in sentence_lines(400).splitlines() if len(line) < 32)
    assert short > 50   # the default 32 characters would have dropped these
    assert stats["docs_in"] == 400
    assert stats["rejected_docs"].get("too_short", 0) == 0
    assert stats["docs_out"]["val"] > 5 and stats["docs_out"]["train"] > 300


def test_blank_line_blocks_and_an_explicit_min_chars_are_kept(tmp_path):
    blocks = "\n\n".join(sentence_lines(3).strip() for _ in range(30))
    (tmp_path / "blocks.txt").write_text(blocks)
    stats = prepare_corpus([tmp_path / "blocks.txt"], tmp_path / "out", PrepareConfig(val_fraction=0.2, dedup=False,
                                                                                       near_dedup=False))
    assert stats["docs_in"] == 30
    (tmp_path / "sentences.txt").write_text(sentence_lines(400))
    stats = prepare_corpus([tmp_path / "sentences.txt"], tmp_path / "strict", PrepareConfig(min_chars=32))
    assert stats["rejected_docs"]["too_short"] > 50


def train_on_sentences(tmp_path, cli, lines: int, val_fraction: str, steps: str):
    """prepare a one-sentence-a-line file (char tokenizer), then train a tiny GPT on it."""
    (tmp_path / "sentences.txt").write_text(sentence_lines(lines))
    assert cli("prepare", tmp_path / "sentences.txt", "--out", tmp_path / "data", "--val-fraction", val_fraction,
               "--tokenizer", "char", "--vocab-size", "64").code == 0
    shards = next((tmp_path / "data" / "tokens").iterdir())
    return cli("train", "--data", shards, "--out", tmp_path / "run", *TINY_MODEL, *TINY_TRAIN, "--max-steps", steps)


def test_prepare_then_train_on_a_sentence_file_validates(tmp_path, cli):
    trained = train_on_sentences(tmp_path, cli, 600, "0.1", "10")
    assert trained.code == 0, trained.err
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("val_loss") is not None for r in records)
    assert "val loss (sample) None" not in trained.err


def test_training_without_a_val_split_warns(tmp_path, cli):
    trained = train_on_sentences(tmp_path, cli, 300, "0", "3")
    assert trained.code == 0 and "no val split" in trained.err


def test_the_validation_sample_spans_the_split():
    tokens = np.zeros(100_001, dtype=np.int32)
    starts = spread_windows(tokens, 100, 64)
    assert len(starts) == 64 and len(set(starts)) == 64
    assert starts[0] == 0 and starts[-1] == (1000 - 1) * 100   # the last window ends at the split's end
    runs = np.split(starts, 8)
    assert all(np.all(np.diff(run) == 100) for run in runs)      # contiguous runs (recurrent state flows)
    assert runs[4][0] > 400 * 100                                # ... spread, not the first 64 windows
    assert list(spread_windows(tokens[:1001], 100, 64)) == list(np.arange(10) * 100)   # a small split: all
