"""Load a tokenizer.json and encode/decode fast: tiktoken for byte-level BPE, numpy for char/byte."""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer as HFTokenizer

from lmforge.errors import InputError
from lmforge.tokenization.byte_level import bytes_to_unicode, token_to_bytes
from lmforge.tokenization.specials import ENCODER_ROLES, ROLES
from lmforge.tokenization.training import SPLIT_PATTERN

FILENAME = "tokenizer.json"
# beside tokenizer.json in an imported run: which of its tokens play our roles (its eos may be "</s>")
ROLES_FILE, ROLES_FORMAT = "special_tokens.json", "lmforge.special-tokens"


def _splits_like_ours(spec: dict) -> bool:
    """Whether a BPE tokenizer pre-splits text with our pattern (then tiktoken encodes it identically)."""
    pre = spec.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    return any(step.get("type") == "Split" and (step.get("pattern") or {}).get("Regex") == SPLIT_PATTERN
               for step in steps)


def _kind_of(spec: dict) -> str:
    model = spec["model"]["type"]
    if model == "BPE":
        if not spec["model"].get("merges"):
            return "byte"
        # a BPE tokenizer from elsewhere (imported from Hugging Face) is encoded by `tokenizers` itself
        return "bpe" if _splits_like_ours(spec) else "foreign-bpe"
    if model == "WordLevel":   # one token per character, or per word
        return "char" if (spec.get("pre_tokenizer") or {}).get("type") == "Split" else "word"
    return {"WordPiece": "wordpiece", "Unigram": "unigram"}.get(model, model.lower())


def _imported_roles(path: Path) -> dict[str, str]:
    """role -> token text, for a tokenizer imported with other special tokens than ours."""
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        if meta.get("format") != ROLES_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
        return {role: str(token) for role, token in meta["roles"].items() if role in ROLES and token}
    except (ValueError, KeyError, AttributeError) as error:
        raise InputError(f"{path}: not a special-token map this lmforge reads ({error}); import the model "
                         "again.") from None


def write_roles(directory: Path, roles: dict[str, str]) -> None:
    """Record which tokens of an imported tokenizer are its bos/eos/pad/unk (see ROLES_FILE)."""
    from lmforge.artifacts import write_json

    write_json(Path(directory) / ROLES_FILE, {"format": ROLES_FORMAT, "version": 1, "roles": roles})


class Tokenizer:
    """A trained tokenizer: `encode_batch` for corpora, `decode` for generation, byte lengths for eval."""

    def __init__(self, path: Path):
        path = Path(path)
        file = path / FILENAME if path.is_dir() else path
        if not file.exists():
            raise InputError(f"{file}: tokenizer not found; train one with `lmforge tokenizer train`.")
        raw = file.read_bytes()
        try:
            self.spec = json.loads(raw)
            self.hf = HFTokenizer.from_str(raw.decode("utf-8"))
        except Exception as error:  # tokenizers raises a bare Exception for bad files
            raise InputError(f"{file}: not a valid tokenizer.json ({error}); retrain it.") from None
        self.path = file
        self.name = file.parent.name
        self.sha256 = hashlib.sha256(raw).hexdigest()
        self.kind = _kind_of(self.spec)
        self.vocab_size = self.hf.get_vocab_size()
        # role -> id of the special tokens this file has (older files lack the encoder tokens)
        self.roles = {**ROLES, **_imported_roles(file.parent / ROLES_FILE)}
        self.special_ids = {role: self.hf.token_to_id(token) for role, token in self.roles.items()
                            if self.hf.token_to_id(token) is not None}
        get = self.special_ids.get
        self.bos_id, self.eos_id, self.pad_id, self.unk_id = get("bos"), get("eos"), get("pad"), get("unk")
        self.mask_id, self.cls_id, self.sep_id = get("mask"), get("cls"), get("sep")

    def require(self, *roles: str, purpose: str) -> None:
        """Refuse, in one line, a tokenizer that lacks special tokens `purpose` needs."""
        missing = [self.roles[r] for r in roles if r not in self.special_ids]
        if missing:
            encoder = " ".join(ROLES[r] for r in ENCODER_ROLES)
            raise InputError(f"{self.path}: this tokenizer has no {' '.join(missing)} token, which {purpose} needs. "
                             f"Tokenizers trained by this lmforge (every --kind) "
                             f"carry {encoder}; retrain one with `lmforge tokenizer train` and re-tokenize.")

    @cached_property
    def _byte_offset(self) -> int:
        """Id of byte 0 in a raw-byte vocabulary (bytes follow the special tokens, however many)."""
        return self.hf.token_to_id(bytes_to_unicode()[0])

    # --- fast encoders -------------------------------------------------------------------------
    @cached_property
    def _tiktoken(self):
        """tiktoken built from our merges: same ids as `tokenizers`, several times faster."""
        import tiktoken

        vocab = self.spec["model"]["vocab"]
        specials = {t["content"]: t["id"] for t in self.spec["added_tokens"]}
        ranks = {token_to_bytes(token): rank for token, rank in vocab.items() if token not in specials}
        return tiktoken.Encoding(name=f"lmforge-{self.name}", pat_str=SPLIT_PATTERN,
                                 mergeable_ranks=ranks, special_tokens=specials)

    @cached_property
    def _char_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted code points and their ids, for a vectorised lookup."""
        vocab = {t: i for t, i in self.hf.get_vocab().items() if len(t) == 1}
        points = np.array(sorted(ord(c) for c in vocab), dtype=np.int64)
        ids = np.array([vocab[chr(p)] for p in points], dtype=np.int64)
        return points, ids

    def _encode_chars(self, text: str) -> list[int]:
        import unicodedata

        points = np.frombuffer(unicodedata.normalize("NFC", text).encode("utf-32-le"), dtype=np.uint32)
        table, ids = self._char_table
        where = np.clip(np.searchsorted(table, points), 0, len(table) - 1)
        found = table[where] == points
        return np.where(found, ids[where], self.unk_id).tolist()

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens."""
        if self.kind == "bpe":
            return self._tiktoken.encode_ordinary_batch(texts, num_threads=2)
        if self.kind == "byte":
            return [(np.frombuffer(t.encode("utf-8"), dtype=np.uint8).astype(np.int64) + self._byte_offset).tolist()
                    for t in texts]
        if self.kind == "char":
            return [self._encode_chars(t) for t in texts]
        return [e.ids for e in self.hf.encode_batch(texts, add_special_tokens=False)]

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def decode(self, ids: list[int]) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=True)

    def continuation_table(self) -> np.ndarray | None:
        """Vocab-sized bool: True for WordPiece pieces that continue a word ('##...'); None for kinds
        without that marker (whole-word masking needs it)."""
        if self.kind != "wordpiece":
            return None
        table = np.zeros(self.vocab_size, dtype=bool)
        for token, index in self.hf.get_vocab().items():
            table[index] = token.startswith("##")
        return table

    # --- for bits-per-byte ---------------------------------------------------------------------
    def token_byte_lengths(self) -> np.ndarray | None:
        """UTF-8 bytes each token stands for (0 for special tokens), or None when not exact
        (WordPiece and word tokenizers drop whitespace, so their byte count comes from the corpus ratio)."""
        if self.kind in ("wordpiece", "word"):
            return None
        lengths = np.zeros(self.vocab_size, dtype=np.int64)
        specials = {t["id"] for t in self.spec["added_tokens"]}
        for token, index in self.hf.get_vocab().items():
            if index in specials:
                continue
            if self.kind in ("bpe", "byte"):
                lengths[index] = len(token_to_bytes(token))
            else:  # unigram's '▁' stands for one space; char tokens are themselves
                lengths[index] = len(token.replace("\u2581", " ").encode("utf-8"))
        return lengths

