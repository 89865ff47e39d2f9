"""Train tokenizers of every kind with Hugging Face `tokenizers`; all are saved as tokenizer.json."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Iterator

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from lmforge.data.documents import UNSPACED_CHARS
from lmforge.errors import InputError
from lmforge.tokenization.byte_level import bytes_to_unicode
from lmforge.tokenization.specials import UNK, special_tokens

# tokenizers' progress bars print stray newlines to stdout when it is not a terminal
_SHOW_PROGRESS = sys.stderr.isatty() and sys.stdout.isatty()
KINDS = ("bpe", "byte", "wordpiece", "unigram", "char", "word")
# The GPT-4 (cl100k) split: words with a leading non-letter, numbers of 1-3 digits, punctuation
# runs, newlines. tiktoken and tokenizers both understand it, so both split text identically.
SPLIT_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
                 r"""|\s*[\r\n]|\s+(?!\S)|\s+""")


def _byte_level(model) -> Tokenizer:
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def train_bpe(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    tokenizer = _byte_level(models.BPE())
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens("bpe"),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=_SHOW_PROGRESS)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def build_byte() -> Tokenizer:
    """Raw bytes: a byte-level BPE with no merges; id = (number of special tokens) + byte value."""
    specials = special_tokens("byte")
    vocab = {token: i for i, token in enumerate(specials)}
    for byte, char in sorted(bytes_to_unicode().items()):
        vocab[char] = len(specials) + byte
    tokenizer = _byte_level(models.BPE(vocab=vocab, merges=[]))
    tokenizer.add_special_tokens(specials)
    return tokenizer


def train_wordpiece(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.WordPiece(unk_token=UNK))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special_tokens("wordpiece"),
                                        show_progress=_SHOW_PROGRESS)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def train_unigram(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=special_tokens("unigram"),
                                      unk_token=UNK, show_progress=_SHOW_PROGRESS)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def train_char(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """One token per character; the most frequent characters fill the vocabulary, the rest are <|unk|>."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(text)
    specials = special_tokens("char")
    kept = sorted(char for char, _ in counts.most_common(max(vocab_size - len(specials), 1)))
    vocab = {token: i for i, token in enumerate(specials + kept)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    tokenizer.add_special_tokens(specials)
    return tokenizer


def train_word(texts: Iterable[str], vocab_size: int, lowercase: bool = True) -> Tokenizer:
    """Whole words and punctuation marks (BERT's pre-tokenizer split), the most frequent first; the rest
    are <|unk|>. For bag-of-words models and word vectors, where a word is the unit; lower-cased by
    default, as bag-of-words features usually are (tagging keeps case: capitals mark proper nouns).
    Each character of an unspaced script (Han, kana, Thai, ...) is a word of its own, as the n-gram word
    splitter has it: the BERT split alone makes a whole unspaced clause one word, which a classifier can
    only memorise (a model's token n-grams then play the part of TF-IDF's character n-grams)."""
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(f"[{UNSPACED_CHARS}]"), behavior="isolated"), pre_tokenizers.BertPreTokenizer()])
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=special_tokens("word"),
                                        show_progress=_SHOW_PROGRESS)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def _counting(texts: Iterable[str], seen: list[int]) -> Iterator[str]:
    for text in texts:
        seen[0] += 1
        yield text


def train_tokenizer(kind: str, texts: Iterable[str], vocab_size: int, source: str) -> Tokenizer:
    """Train a tokenizer of `kind`; refuse a vocabulary the corpus cannot fill."""
    if kind not in KINDS:
        raise InputError(f"--kind {kind!r}: unknown tokenizer kind; choose one of {', '.join(KINDS)}.")
    if kind == "byte":
        return build_byte()
    minimum = 256 + len(special_tokens(kind)) if kind == "bpe" else len(special_tokens(kind)) + 1
    if vocab_size < minimum:
        raise InputError(f"--vocab-size {vocab_size}: too small for a {kind} tokenizer; use at least {minimum}.")
    seen = [0]
    trainer = {"bpe": train_bpe, "wordpiece": train_wordpiece, "unigram": train_unigram, "char": train_char,
               "word": train_word}[kind]
    tokenizer = trainer(_counting(texts, seen), vocab_size)
    if seen[0] == 0:
        raise InputError(f"{source}: no training documents; run `lmforge prepare` on a non-empty corpus.")
    got = tokenizer.get_vocab_size()
    # the Unigram trainer prunes to about (not exactly) the requested size
    enough = 0.75 * vocab_size if kind == "unigram" else vocab_size
    if kind not in ("char", "word") and got < enough:   # these take the vocabulary the corpus has
        raise InputError(f"{source}: the corpus supports only {got} {kind} tokens, fewer than --vocab-size "
                         f"{vocab_size}; pass --vocab-size {got} or less, or add more text.")
    return tokenizer
