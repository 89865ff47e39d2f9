"""Special tokens, declared once: every tokenizer kind, the encoder objectives and the task heads
read their names (and ids, through `Tokenizer.special_ids`) from here, never from an offset."""

from __future__ import annotations

BOS, EOS, PAD, UNK = "<|bos|>", "<|eos|>", "<|pad|>", "<|unk|>"
CLS, SEP, MASK = "<|cls|>", "<|sep|>", "<|mask|>"

# role -> token text; a tokenizer.json may hold any subset (older files have no CLS/SEP/MASK)
ROLES = {"bos": BOS, "eos": EOS, "pad": PAD, "unk": UNK, "cls": CLS, "sep": SEP, "mask": MASK}
ENCODER_ROLES = ("cls", "sep", "mask")


def special_tokens(kind: str) -> list[str]:
    """The special tokens a tokenizer of `kind` is trained with, in id order (they come first).
    Byte-level kinds can spell any text, so they need no <|unk|>. Every kind carries the encoder
    tokens, so one tokenizer serves a decoder, a masked-LM encoder and the task heads."""
    unk = [] if kind in ("bpe", "byte") else [UNK]
    return [BOS, EOS, PAD, *unk, CLS, SEP, MASK]

# chat runs (tokenization/chat.py): added by `finetune --task chat`, after a tokenizer's vocabulary
CHAT_ROLES = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
CHAT_END = "<|end|>"
