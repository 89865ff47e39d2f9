"""A Llama-compatible GPT decoder: RoPE, RMSNorm, SwiGLU, causal SDPA attention, a KV cache with a length
per row, and the decoder protocol (inference/decoding.py) over it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmforge.models.layers import CacheStep, KVCache, RMSNorm, RotaryEmbedding, SwiGLU, apply_rope, cached_mask


@dataclass
class GPTConfig:
    vocab_size: int = 8192
    """Tokens in the vocabulary; must match the tokenizer (taken from the shards when training)."""
    max_seq_len: int = 256
    """Longest context the model is trained for (tokens)."""
    n_layers: int = 4
    """Transformer blocks."""
    n_heads: int = 4
    """Attention heads; must divide d_model."""
    n_kv_heads: int | None = None
    """Key/value heads for grouped-query attention; None means n_heads (plain multi-head)."""
    d_model: int = 128
    """Width of the residual stream."""
    d_ff: int | None = None
    """Hidden width of the SwiGLU MLP; None means 8/3 * d_model rounded up to a multiple of 32."""
    rope_theta: float = 10_000.0
    """RoPE base frequency."""
    norm_eps: float = 1e-5
    """RMSNorm epsilon."""
    tie_embeddings: bool = False
    """Share the input embedding and output projection weights."""
    dropout: float = 0.0
    """Dropout on attention and MLP outputs (0 for pretraining)."""
    init_std: float = 0.02
    """Standard deviation of the normal initialisation of every weight matrix."""

    def __post_init__(self) -> None:
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.d_ff is None:
            self.d_ff = 32 * math.ceil(8 * self.d_model / 3 / 32)
        checks = [
            (self.vocab_size > 0, f"--vocab-size must be positive, got {self.vocab_size}"),
            (self.max_seq_len > 0, f"--max-seq-len must be positive, got {self.max_seq_len}"),
            (self.n_layers > 0, f"--n-layers must be positive, got {self.n_layers}"),
            (self.n_heads > 0 and self.d_model % self.n_heads == 0,
             f"--n-heads {self.n_heads} must divide --d-model {self.d_model}"),
            (self.n_kv_heads > 0 and self.n_heads % self.n_kv_heads == 0,
             f"--n-kv-heads {self.n_kv_heads} must divide --n-heads {self.n_heads}"),
            ((self.d_model // max(self.n_heads, 1)) % 2 == 0, "head size d_model / n_heads must be even for RoPE"),
            (0.0 <= self.dropout < 1.0, f"--dropout must be in [0, 1), got {self.dropout}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


PRESETS: dict[str, dict] = {
    "tiny": dict(n_layers=4, n_heads=4, d_model=128, max_seq_len=128),   # 128: more steps in a CPU budget
    "small": dict(n_layers=6, n_heads=6, d_model=384, max_seq_len=256),
    "gpt2-124m": dict(n_layers=12, n_heads=12, d_model=768, max_seq_len=1024, d_ff=2048),
    "medium": dict(n_layers=24, n_heads=16, d_model=1024, max_seq_len=1024),
    "llama-1b": dict(n_layers=16, n_heads=32, n_kv_heads=8, d_model=2048, d_ff=8192, max_seq_len=2048,
                     rope_theta=500_000.0, tie_embeddings=True),
}


class Attention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = config.n_heads, config.n_kv_heads, config.head_dim
        self.qkv = nn.Linear(config.d_model, (config.n_heads + 2 * config.n_kv_heads) * config.head_dim,
                             bias=False)
        self.out = nn.Linear(config.d_model, config.d_model, bias=False)
        self.dropout = config.dropout

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], layer: int, cache: KVCache | None,
                step: CacheStep | None) -> Tensor:
        B, T, _ = x.shape
        H, H_kv = self.n_heads, self.n_kv_heads
        qkv = self.qkv(x).view(B, T, H + 2 * H_kv, self.head_dim)        # (B, T, H + 2 H_kv, hd)
        qk = apply_rope(qkv[:, :, :H + H_kv], *rope)                      # queries and keys rotated at once
        q = qk[:, :, :H].transpose(1, 2)                                  # (B, H, T, hd)
        k = qk[:, :, H:].transpose(1, 2)                                  # (B, H_kv, T, hd)
        v = qkv[:, :, H + H_kv:].transpose(1, 2)                          # (B, H_kv, T, hd)
        mask, causal = None, True   # one token attends to itself either way (and ONNX traces a bool)
        if cache is not None:
            k, v = cache.store(layer, k, v, step)                         # (B, H_kv, S, hd)
            mask, causal = cached_mask(step, x.device)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           dropout_p=self.dropout if self.training else 0.0,
                                           enable_gqa=H_kv != H)           # (B, H, T, hd)
        return self.out(y.transpose(1, 2).reshape(B, T, -1))              # (B, T, d_model)


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.attn_norm = RMSNorm(config.d_model, config.norm_eps)
        self.attn = Attention(config)
        self.mlp_norm = RMSNorm(config.d_model, config.norm_eps)
        self.mlp = SwiGLU(config.d_model, config.d_ff)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], layer: int, cache: KVCache | None,
                step: CacheStep | None) -> Tensor:
        x = x + self.dropout(self.attn(self.attn_norm(x), rope, layer, cache, step))
        return x + self.dropout(self.mlp(self.mlp_norm(x)))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed.weight
        self.rope = RotaryEmbedding(config.head_dim, config.max_seq_len, config.rope_theta)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal(0, init_std) weights; residual output projections scaled by 1/sqrt(2 * n_layers)."""
        std = self.config.init_std
        for name, param in self.named_parameters():
            if param.dim() < 2:
                continue
            scale = 1 / math.sqrt(2 * self.config.n_layers) if name.endswith(("attn.out.weight", "down.weight")) else 1
            nn.init.normal_(param, mean=0.0, std=std * scale)

    def hidden(self, tokens: Tensor, cache: KVCache | None = None, positions: Tensor | None = None) -> Tensor:
        """The final normed states (B, T, d_model) that lm_head maps to logits (a loss can fuse the
        head and never hold all logits; task heads read them too). With a cache, `positions` (B, T) give
        each token's position (< 0: padding, which comes before a row's tokens); by default each row
        continues where it stopped."""
        B, T = tokens.shape
        x = self.embed(tokens)                          # (B, T, d_model)
        if cache is None:
            if self.config.max_seq_len < T:
                raise ValueError(f"sequence of {T} tokens exceeds max_seq_len {self.config.max_seq_len}")
            rope, step = self.rope(0, T), None                          # cos, sin: (T, 1, head_dim)
        else:
            if positions is None:
                positions = torch.tensor(cache.lengths, device=tokens.device)[:, None] + \
                    torch.arange(T, device=tokens.device)               # (B, T)
            step = cache.plan(positions)
            rope = self.rope(step.starts[0], T) if step.uniform else self.rope.at(positions)
        for layer, block in enumerate(self.blocks):
            x = block(x, rope, layer, cache, step)
        if cache is not None:
            cache.advance(step)
        return self.norm(x)                             # (B, T, d_model)

    def forward(self, tokens: Tensor, cache: KVCache | None = None, positions: Tensor | None = None) -> Tensor:
        return self.lm_head(self.hidden(tokens, cache, positions))  # (B, T, vocab_size)

    # --- the decoder protocol (inference/decoding.py) ------------------------------------------
    @property
    def max_context(self) -> int:
        return self.config.max_seq_len

    def new_state(self, batch_size: int, max_len: int | None = None, memory: Tensor | None = None,
                  device=None, dtype=None) -> KVCache:
        """An empty cache for `batch_size` rows of up to `max_len` tokens (a decoder-only model reads no
        encoder memory)."""
        if memory is not None:
            raise ValueError("a GPT decoder reads no encoder memory")
        c = self.config
        return KVCache(c.n_layers, batch_size, c.n_kv_heads, min(max_len or c.max_seq_len, c.max_seq_len),
                       c.head_dim, device=device, dtype=dtype)

    def step(self, tokens: Tensor, positions: Tensor, state: KVCache,
             keep_last: int | None = None) -> tuple[Tensor, KVCache]:
        """Logits (B, T, vocab_size) for `tokens` (B, T) at `positions` after each row's cached tokens, or
        for the last `keep_last` columns only; the cache grows by each row's real tokens."""
        hidden = self.hidden(tokens, state, positions)
        if keep_last is not None:
            hidden = hidden[:, -keep_last:]
        return self.lm_head(hidden), state

    def reorder(self, state: KVCache, index: Tensor) -> KVCache:
        return state.reorder(index)

    def truncate(self, state: KVCache, lengths: list[int]) -> KVCache:
        """Forget each row's cached tokens from lengths[b] on (drafts the verifier rejected)."""
        return state.truncate(lengths)

    def join(self, state: KVCache, other: KVCache) -> KVCache:
        """The rows of `state`, then those of `other` (continuous batching: new requests join)."""
        return state.concat(other)

    def num_params(self, embeddings: bool = True) -> int:
        total = sum(p.numel() for p in self.parameters())
        return total if embeddings else total - self.embed.weight.numel()

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token (forward + backward): 6 * matmul params + attention (PaLM appendix B)."""
        c = self.config
        seq_len = seq_len or c.max_seq_len
        matmul_params = self.num_params(embeddings=False)
        if c.tie_embeddings:  # the shared matrix is not counted above, but the head still multiplies by it
            matmul_params += self.lm_head.weight.numel()
        return 6 * matmul_params + 12 * c.n_layers * c.d_model * seq_len
