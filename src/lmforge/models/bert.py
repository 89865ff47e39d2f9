"""A BERT-style bidirectional Transformer encoder: learned or rotary positions, GELU or SwiGLU MLP,
pre- or post-norm (post-norm with learned positions and GELU is the original BERT layout, whose
logits match Hugging Face `BertForMaskedLM` with copied weights), segment embeddings for pairs."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmforge.models.heads import MLMHead
from lmforge.models.layers import RotaryEmbedding, apply_rope


@dataclass
class BERTConfig:
    vocab_size: int = 8192
    """Tokens in the vocabulary; must match the tokenizer (taken from the shards when training)."""
    max_seq_len: int = 128
    """Longest input the encoder reads (tokens)."""
    n_layers: int = 4
    """Transformer blocks."""
    n_heads: int = 4
    """Attention heads; must divide d_model."""
    d_model: int = 128
    """Width of the hidden states."""
    d_ff: int | None = None
    """Hidden width of the MLP; None means 4 * d_model (gelu) or 8/3 * d_model rounded to 32 (swiglu)."""
    positions: str = "learned"
    """learned (absolute, as BERT) or rope (rotary, as in recent encoders)."""
    mlp: str = "gelu"
    """gelu (BERT) or swiglu."""
    norm_position: str = "pre"
    """pre (LayerNorm before each sublayer; trains stably at high LR) or post (the original BERT)."""
    n_segments: int = 2
    """Segment (token type) embeddings for sentence pairs; 0 for none."""
    norm_eps: float = 1e-12
    """LayerNorm epsilon (BERT's value)."""
    dropout: float = 0.0
    """Dropout on embeddings, attention and sublayer outputs (0 for short pretraining, 0.1 to fine-tune)."""
    init_std: float = 0.02
    """Standard deviation of the normal initialisation of every weight matrix."""

    def __post_init__(self) -> None:
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model if self.mlp == "gelu" else 32 * math.ceil(8 * self.d_model / 3 / 32)
        checks = [
            (self.vocab_size > 0, f"--vocab-size must be positive, got {self.vocab_size}"),
            (self.max_seq_len > 0, f"--max-seq-len must be positive, got {self.max_seq_len}"),
            (self.n_layers > 0, f"--n-layers must be positive, got {self.n_layers}"),
            (self.n_heads > 0 and self.d_model % self.n_heads == 0,
             f"--n-heads {self.n_heads} must divide --d-model {self.d_model}"),
            (self.positions in ("learned", "rope"), f"--positions must be learned or rope, got {self.positions!r}"),
            (self.positions != "rope" or (self.d_model // self.n_heads) % 2 == 0,
             "head size d_model / n_heads must be even for rope"),
            (self.mlp in ("gelu", "swiglu"), f"--mlp must be gelu or swiglu, got {self.mlp!r}"),
            (self.norm_position in ("pre", "post"), f"--norm-position must be pre or post, got {self.norm_position!r}"),
            (self.n_segments >= 0, f"--n-segments must be >= 0, got {self.n_segments}"),
            (0.0 <= self.dropout < 1.0, f"--dropout must be in [0, 1), got {self.dropout}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


PRESETS: dict[str, dict] = {
    "tiny": dict(n_layers=4, n_heads=4, d_model=128, max_seq_len=128),
    "small": dict(n_layers=4, n_heads=8, d_model=512, max_seq_len=256),
    "base": dict(n_layers=12, n_heads=12, d_model=768, max_seq_len=512),
}


class SelfAttention(nn.Module):
    """Bidirectional multi-head attention; padding keys are masked out."""

    def __init__(self, config: BERTConfig):
        super().__init__()
        self.n_heads, self.head_dim = config.n_heads, config.head_dim
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)
        self.dropout = config.dropout

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor] | None, key_mask: Tensor | None) -> Tensor:
        B, T, _ = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_heads, self.head_dim)        # (B, T, 3, H, hd)
        q, k, v = qkv.unbind(dim=2)                                          # (B, T, H, hd) each
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           attn_mask=key_mask, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(B, T, -1))                # (B, T, d_model)


class MLP(nn.Module):
    def __init__(self, config: BERTConfig):
        super().__init__()
        self.swiglu = config.mlp == "swiglu"
        self.up = nn.Linear(config.d_model, (2 if self.swiglu else 1) * config.d_ff)
        self.down = nn.Linear(config.d_ff, config.d_model)

    def forward(self, x: Tensor) -> Tensor:
        if self.swiglu:
            gate, up = self.up(x).chunk(2, dim=-1)    # (B, T, d_ff) each
            return self.down(F.silu(gate) * up)
        return self.down(F.gelu(self.up(x)))          # (B, T, d_model)


class EncoderBlock(nn.Module):
    def __init__(self, config: BERTConfig):
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.attn = SelfAttention(config)
        self.attn_norm = nn.LayerNorm(config.d_model, eps=config.norm_eps)
        self.mlp = MLP(config)
        self.mlp_norm = nn.LayerNorm(config.d_model, eps=config.norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, rope, key_mask: Tensor | None) -> Tensor:
        if self.pre_norm:
            x = x + self.dropout(self.attn(self.attn_norm(x), rope, key_mask))
            return x + self.dropout(self.mlp(self.mlp_norm(x)))
        x = self.attn_norm(x + self.dropout(self.attn(x, rope, key_mask)))
        return self.mlp_norm(x + self.dropout(self.mlp(x)))


class BERT(nn.Module):
    def __init__(self, config: BERTConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.position = nn.Embedding(config.max_seq_len, config.d_model) if config.positions == "learned" else None
        self.rope = (RotaryEmbedding(config.head_dim, config.max_seq_len, 10_000.0)
                     if config.positions == "rope" else None)
        self.segment = nn.Embedding(config.n_segments, config.d_model) if config.n_segments else None
        self.embed_norm = nn.LayerNorm(config.d_model, eps=config.norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(EncoderBlock(config) for _ in range(config.n_layers))
        # a pre-norm stack leaves its residual stream un-normalised: one final norm, as in GPT-2
        self.norm = nn.LayerNorm(config.d_model, eps=config.norm_eps) if config.norm_position == "pre" else None
        self.mlm_head = MLMHead(config.d_model, config.vocab_size, config.norm_eps)
        self.mlm_head.decoder.weight = self.embed.weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal(0, init_std) matrices and embeddings, zero biases, unit LayerNorm gains (as BERT)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=self.config.init_std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def hidden(self, tokens: Tensor, padding_mask: Tensor | None = None, segments: Tensor | None = None) -> Tensor:
        """Hidden states (B, T, d_model). `padding_mask` (B, T) is True on real tokens; `segments` (B, T)
        numbers the sentences of a pair (0 or 1)."""
        T = tokens.size(1)
        if self.config.max_seq_len < T:
            raise ValueError(f"sequence of {T} tokens exceeds max_seq_len {self.config.max_seq_len}")
        x = self.embed(tokens)                                               # (B, T, d_model)
        if self.position is not None:
            x = x + self.position(torch.arange(T, device=tokens.device))   # a call, so hooks see it
        if self.segment is not None:
            x = x + self.segment(segments if segments is not None else torch.zeros_like(tokens))
        x = self.dropout(self.embed_norm(x))
        rope = self.rope(0, T) if self.rope is not None else None
        key_mask = None if padding_mask is None else padding_mask[:, None, None, :]   # (B, 1, 1, T)
        for block in self.blocks:
            x = block(x, rope, key_mask)
        return self.norm(x) if self.norm is not None else x                  # (B, T, d_model)

    def forward(self, tokens: Tensor, padding_mask: Tensor | None = None, segments: Tensor | None = None) -> Tensor:
        """Masked-LM logits (B, T, vocab_size)."""
        return self.mlm_head(self.hidden(tokens, padding_mask, segments))

    def num_params(self, embeddings: bool = True) -> int:
        total = sum(p.numel() for p in self.parameters())
        return total if embeddings else total - self.embed.weight.numel()

    def flops_per_token(self, seq_len: int | None = None, predicted_fraction: float = 0.15) -> int:
        """Training FLOPs per token: 6 * block matrices + attention, plus the MLM head on the
        predicted fraction of positions only (the objective applies it there alone)."""
        c = self.config
        seq_len = seq_len or c.max_seq_len
        blocks = sum(p.numel() for name, p in self.blocks.named_parameters() if p.dim() == 2)
        head = self.mlm_head.dense.weight.numel() + self.mlm_head.decoder.weight.numel()
        return int(6 * blocks + 12 * c.n_layers * c.d_model * seq_len + 6 * head * predicted_fraction)
