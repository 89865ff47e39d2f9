"""Tokenizers of every kind; the tiktoken fast path against Hugging Face tokenizers (reference)."""

import json
import random

import numpy as np
import pytest

from conftest import assert_input_error, make_sentences
from lmforge.errors import InputError
from lmforge.tokenization.tokenizer import Tokenizer
from lmforge.tokenization.training import KINDS, train_tokenizer

TRICKY = ["Hello, world!  Double  spaces\tand\ttabs\n\n\nnewlines",
          "Numbers 1234567 and 3.14159, dates 2026-11-29; emoji 🙂🚀 and CJK 漢字かな",
          "Café naïve façade — “quotes” ‘single’ don't won't I'll we've",
          "   leading spaces", "trailing spaces   ", "", "a", "\n", "x" * 500,
          "def f(x):\n    return {'a': [1, 2]}  # code\n"]


VOCAB = {"bpe": 400, "byte": 259, "wordpiece": 400, "unigram": 250, "char": 400, "word": 400}


def corpus(n=300, seed=0):
    rng = random.Random(seed)
    return [make_sentences(rng, 6) for _ in range(n)] + TRICKY * 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokenizers")
    loaded = {}
    for kind in KINDS:
        tokenizer = train_tokenizer(kind, iter(corpus()), VOCAB[kind], "test corpus")
        (root / kind).mkdir()
        tokenizer.save(str(root / kind / "tokenizer.json"))
        loaded[kind] = Tokenizer(root / kind)
    return loaded


# lmforge encodes these kinds with code of its own (tiktoken from our merges, NumPy lookups); the others go
# through `tokenizers`, so they are held to an independent implementation of their algorithm below instead
OWN_ENCODERS = ("bpe", "byte", "char")


@pytest.mark.parametrize("kind", OWN_ENCODERS)
def test_fast_encoder_matches_hugging_face_and_round_trips(trained, kind):
    tokenizer = trained[kind]
    assert tokenizer.kind == kind
    texts = corpus(50, seed=1) + TRICKY
    fast = tokenizer.encode_batch(texts)
    reference = [e.ids for e in tokenizer.hf.encode_batch(texts, add_special_tokens=False)]
    assert fast == reference
    if kind in ("bpe", "byte"):  # byte-level kinds reproduce any text exactly
        assert [tokenizer.decode(ids) for ids in fast] == texts


def _bert_words(text: str) -> list[str]:
    """BERT's pre-tokenizer: split on whitespace, each punctuation character a word of its own."""
    import unicodedata

    def punctuation(char: str) -> bool:
        code = ord(char)
        return 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126 or \
            unicodedata.category(char).startswith("P")

    words = []
    for chunk in text.split():
        current = ""
        for char in chunk:
            if punctuation(char):
                words += [current, char] if current else [char]
                current = ""
            else:
                current += char
        if current:
            words.append(current)
    return words


def _wordpiece(tokenizer, text: str) -> list[int]:
    """Greedy longest-match-first WordPiece (Schuster & Nakajima; BERT's tokenizer), written out; a word of
    over 100 characters is unknown whole, as in BERT."""
    import unicodedata

    vocab, out = tokenizer.hf.get_vocab(), []
    for word in _bert_words(unicodedata.normalize("NFC", text)):
        pieces, start = ([tokenizer.unk_id], len(word)) if len(word) > 100 else ([], 0)
        while start < len(word):
            end = len(word)
            while end > start and (("##" if start else "") + word[start:end]) not in vocab:
                end -= 1
            if end == start:   # no piece fits: the whole word is unknown
                pieces = [tokenizer.unk_id]
                break
            pieces.append(vocab[("##" if start else "") + word[start:end]])
            start = end
        out += pieces
    return out


def _unigram(tokenizer, text: str) -> list[int]:
    """Viterbi segmentation of each metaspace-marked word into the pieces of highest total log-probability;
    a character no piece covers is <|unk|> at the lowest piece score - 10, consecutive ones fused (SentencePiece)."""
    import unicodedata

    pieces = {token: (index, score) for index, (token, score) in enumerate(tokenizer.spec["model"]["vocab"])}
    unk_score = min(score for _, score in pieces.values()) - 10.0
    longest = max(len(token) for token in pieces)
    if not text:
        return []
    text = unicodedata.normalize("NFC", text).replace(" ", "\u2581")
    text = text if text.startswith("\u2581") else "\u2581" + text   # a word mark first, unless spaces give one
    out = []
    for word in [w for w in text.replace("\u2581", "\x00\u2581").split("\x00") if w]:
        best = [(0.0, [])] + [(-float("inf"), [])] * len(word)
        for end in range(1, len(word) + 1):
            for start in range(max(0, end - longest), end):
                piece = word[start:end]
                if piece in pieces and best[start][0] + pieces[piece][1] > best[end][0]:
                    best[end] = (best[start][0] + pieces[piece][1], best[start][1] + [pieces[piece][0]])
            if best[end][0] == -float("inf") and best[end - 1][0] > -float("inf"):
                best[end] = (best[end - 1][0] + unk_score, best[end - 1][1] + [tokenizer.unk_id])
        ids = best[-1][1]
        out += [i for k, i in enumerate(ids) if not (i == tokenizer.unk_id and k and ids[k - 1] == i)]
    return out


def _words(tokenizer, text: str) -> list[int]:
    """Each Han/kana character a word of its own (spaces put round it), then BERT's split."""
    import re
    import unicodedata

    vocab = tokenizer.hf.get_vocab()
    spaced = re.sub(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff])", r" \1 ", unicodedata.normalize("NFKC", text))
    return [vocab.get(w, tokenizer.unk_id) for w in _bert_words(spaced.lower())]


@pytest.mark.parametrize("kind, reference", [("wordpiece", _wordpiece), ("unigram", _unigram), ("word", _words)])
def test_library_kinds_encode_as_their_algorithm_says(trained, kind, reference):
    tokenizer = trained[kind]
    texts = corpus(50, seed=1) + TRICKY
    got = tokenizer.encode_batch(texts)
    assert got == [reference(tokenizer, t) for t in texts]
    assert sum(map(len, got)) > len(texts)   # real segmentations, not empty ones


@pytest.mark.parametrize("kind", KINDS)
def test_special_tokens_and_byte_lengths(trained, kind):
    tokenizer = trained[kind]
    assert (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id) == (0, 1, 2)
    lengths = tokenizer.token_byte_lengths()
    if kind in ("wordpiece", "word"):   # whitespace is dropped: bytes come from the corpus ratio
        assert lengths is None
        return
    assert lengths[:3].tolist() == [0, 0, 0]
    text = "The quiet river runs near the old city."
    if kind != "unigram":  # unigram adds a leading '▁' (one space) to the first word
        assert lengths[tokenizer.encode(text)].sum() == len(text.encode())


def test_bpe_vocab_size_and_bpe_beats_bytes(trained):
    assert trained["bpe"].vocab_size == 400
    text = " ".join(corpus(20, seed=3))
    assert len(trained["bpe"].encode(text)) < 0.5 * len(trained["byte"].encode(text))


def test_vocab_larger_than_the_corpus_supports():
    with pytest.raises(InputError, match=r"supports only \d+ bpe tokens.*--vocab-size"):
        train_tokenizer("bpe", iter(["tiny corpus", "of few words"]), 5000, "corpus")
    with pytest.raises(InputError, match="too small"):
        train_tokenizer("bpe", iter(["x"]), 100, "corpus")
    with pytest.raises(InputError, match="unknown tokenizer kind"):
        train_tokenizer("sentencepiece", iter(["x"]), 100, "corpus")


def test_tokenize_stage_writes_eos_separated_shards(prepared):
    meta = json.loads((prepared["shards"] / "meta.json").read_text())
    assert meta["format"] == "lmforge.shards" and meta["dtype"] == "uint16" and meta["vocab_size"] == 320
    tokenizer = Tokenizer(prepared["shards"])
    assert tokenizer.sha256 == meta["tokenizer_sha256"]
    train = np.fromfile(prepared["shards"] / "train.bin", dtype=np.uint16)
    assert len(train) == meta["splits"]["train"]["tokens"]
    assert (train == tokenizer.eos_id).sum() == meta["splits"]["train"]["documents"]
    assert train[-1] == tokenizer.eos_id
    first_doc = train[: int(np.argmax(train == tokenizer.eos_id))]
    assert len(tokenizer.decode(first_doc.tolist())) > 10


def test_tokenizer_cli_errors(prepared, cli, tmp_path):
    result = cli("tokenizer", "train", prepared["data"], "--kind", "bpe", "--vocab-size", "100000",
                 "--out", tmp_path / "t")
    assert_input_error(result, "supports only", "--vocab-size")
    assert_input_error(cli("tokenizer", "train", tmp_path / "none", "--out", tmp_path / "t"), "no such directory")
    assert_input_error(cli("tokenize", prepared["data"], "--tokenizer", tmp_path / "none"), "tokenizer not found")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "tokenizer.json").write_text("{not json")
    assert_input_error(cli("tokenize", prepared["data"], "--tokenizer", tmp_path / "broken"), "not a valid")


def test_word_tokenizer_splits_words_and_punctuation_lower_cased(trained):
    tokenizer = trained["word"]
    pieces = [tokenizer.hf.id_to_token(i) for i in tokenizer.encode("The river, the RIVER!")]
    assert pieces == ["the", "river", ",", "the", "river", "!"]
    assert tokenizer.encode("zzyzx")[0] == tokenizer.unk_id
