"""Text -> sentences of word strings, the units an n-gram model counts.

A sentence is one line of a document (as for KenLM's `lmplz`, which wraps every input line in
<s> ... </s>); a blank line is an empty sentence. Words come from one of three splitters:
- `words` (default): runs of letters/digits with an inner apostrophe part ("don't", "whale's"), each other
  non-space character alone (punctuation is a word), each character of an unspaced script (Han, kana,
  Thai, ...) alone; `--lowercase` folds case first. For ASCII lower-case text this is exactly the
  tokenization of the KenLM reference files (../shared/data/kenlm_reference/tokenize_words.py).
- `whitespace`: the line split on whitespace (text that is already tokenized).
- a trained lmforge tokenizer: its tokens are the words (no OOV with a byte-level tokenizer, so bits
  per byte are comparable with a neural run on the same tokenizer).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from lmforge.data.documents import UNSPACED_CHARS

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
SPECIAL_WORDS = (UNK, BOS, EOS)   # ids 0, 1, 2 of every n-gram vocabulary

_WORD = re.compile(f"[{UNSPACED_CHARS}]"
                   f"|[^\\W_{UNSPACED_CHARS}]+(?:'[^\\W\\d_{UNSPACED_CHARS}]+)?"
                   r"|\S")


def split_words(line: str) -> list[str]:
    return _WORD.findall(line)


# a character of an unspaced script, or CJK / full-width punctuation: no space beside it when words are joined
_UNSPACED_OR_CJK_MARK = re.compile(f"[{UNSPACED_CHARS}\u3000-\u303f\uff00-\uffef]")


def join_words(words: list[str]) -> str:
    """Words back into text: spaces between words, none next to a character of an unspaced script or a
    CJK punctuation mark (Chinese generated word by word reads 交通方便，not 交 通 方 便 ，)."""
    out: list[str] = []
    for word in words:
        if out and not (_UNSPACED_OR_CJK_MARK.fullmatch(out[-1][-1:]) or _UNSPACED_OR_CJK_MARK.fullmatch(word[:1])):
            out.append(" ")
        out.append(word)
    return "".join(out)


def _escape(token: str) -> str:
    """ARPA separates words by whitespace: a token holding whitespace is written as <0xHH...>."""
    if not token or any(ch.isspace() for ch in token):
        return "<0x" + token.encode("utf-8").hex().upper() + ">"
    return token


class WordSplitter:
    """One named splitter; `name` is what the run records so scoring splits text the same way."""

    def __init__(self, name: str = "words", lowercase: bool = False, tokenizer=None):
        self.name, self.lowercase, self.tokenizer = name, lowercase, tokenizer
        if tokenizer is not None:
            self._strings = [_escape(tokenizer.hf.id_to_token(i) or "") for i in range(tokenizer.vocab_size)]
        self._split: Callable[[str], list[str]] = str.split if name == "whitespace" else split_words

    def sentences(self, lines: Iterable[str]) -> Iterator[list[str]]:
        """The word sentences of some lines. A blank line is an empty sentence (<s> </s>): a model then pays
        for a text's layout too, so its bits per byte compare with a neural model's over the same bytes."""
        if self.tokenizer is not None:
            yield from self._token_sentences(lines)
            return
        for line in lines:
            yield self._split(line.lower() if self.lowercase else line)

    def _token_sentences(self, lines: Iterable[str]) -> Iterator[list[str]]:
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) == 1024:
                yield from self._encode(batch)
                batch = []
        yield from self._encode(batch)

    def _encode(self, batch: list[str]) -> Iterator[list[str]]:
        strings = self._strings
        for ids in self.tokenizer.encode_batch(batch) if batch else []:
            yield [strings[i] for i in ids]

    def vocabulary(self) -> list[str] | None:
        """The closed vocabulary of a tokenizer's tokens (None for word splitters: words are open-ended)."""
        if self.tokenizer is None:
            return None
        specials = set(self.tokenizer.special_ids.values())   # <|bos|> and the like never occur in text
        strings = [w for i, w in enumerate(self._strings) if i not in specials]
        return [w for w in dict.fromkeys(strings) if w and w not in SPECIAL_WORDS]

    def describe(self) -> dict:
        return {"words": self.name, "lowercase": self.lowercase}


def text_lines(texts: Iterable[str]) -> Iterator[str]:
    """Documents -> their lines (each line a sentence)."""
    for text in texts:
        yield from text.splitlines()


def corpus_lines(source, split: str = "train") -> Iterator[str]:
    """The lines of one split of a prepared dataset (`lmforge prepare` output), or of a text file
    (.txt or .txt.gz, one sentence per line, as `lmplz` reads), which has no splits."""
    import gzip
    from pathlib import Path

    from lmforge.data.readers import iter_clean_texts, open_text
    from lmforge.errors import InputError
    from lmforge.tokenization.corpus import clean_dir

    source = Path(source)
    if source.is_dir():
        yield from text_lines(iter_clean_texts(clean_dir(source), split))
        return
    if not source.is_file():
        raise InputError(f"{source}: no such dataset directory or text file; pass a `lmforge prepare` output "
                         "or a .txt/.txt.gz file with one sentence per line.")
    try:
        with open_text(source) as handle:
            for line in handle:
                yield line.rstrip("\n")
    except UnicodeDecodeError as error:
        raise InputError(f"{source}: not UTF-8 text ({error}); convert it or prepare it with `lmforge prepare`.") \
            from None
    except (EOFError, gzip.BadGzipFile) as error:
        raise InputError(f"{source}: damaged gzip file ({error}).") from None
