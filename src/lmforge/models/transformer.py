"""The Transformer encoder-decoder (Vaswani et al. 2017) on the layers the GPT and BERT families share:
RMSNorm, rotary positions in self-attention, SwiGLU. Post-norm (the original layout, normalising each
residual sum; the `tiny` default: it went further in 10 CPU minutes) or pre-norm (normalising each sublayer's
input; faster to start and tolerant of high learning rates, the larger presets).
The encoder reads the source with bidirectional self-attention (padding masked out); each decoder
block attends causally to the target so far, then to the encoder states (cross-attention), then applies
its MLP. Source and target embeddings may be one matrix (one tokenizer for both sides), and the output
projection is the target embedding. Decoding caches the decoder's self-attention keys/values (a length
per row) and computes each sentence's cross-attention keys/values once."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmforge.models.layers import (
    CacheStep,
    EncoderOutput,
    KVCache,
    RMSNorm,
    RotaryEmbedding,
    SwiGLU,
    apply_rope,
    cached_mask,
    regroup,
)

NORM_POSITIONS = ("pre", "post")


@dataclass
class TransformerConfig:
    src_vocab_size: int = 8000
    """Source tokens in the vocabulary (taken from the pair shards when training)."""
    tgt_vocab_size: int = 8000
    """Target tokens in the vocabulary (taken from the pair shards when training)."""
    d_model: int = 256
    """Width of the residual stream."""
    n_heads: int = 4
    """Attention heads; must divide d_model."""
    enc_layers: int = 3
    """Encoder blocks."""
    dec_layers: int = 3
    """Decoder blocks."""
    d_ff: int | None = None
    """Hidden width of the SwiGLU MLPs; None means 2 * d_model (narrow MLPs suit small data)."""
    dropout: float = 0.3
    """Dropout on embeddings, attention outputs and MLP outputs."""
    attn_dropout: float = 0.1
    """Dropout on attention weights."""
    max_seq_len: int = 256
    """Longest source or target (tokens); longer training pairs are skipped."""
    share_embeddings: bool = True
    """One embedding matrix for source and target (needs one tokenizer for both sides; a run with two
    tokenizers turns it off)."""
    tie_embeddings: bool = True
    """The output projection is the target embedding."""
    rope_theta: float = 10_000.0
    """RoPE base frequency."""
    norm_eps: float = 1e-5
    """RMSNorm epsilon."""
    norm_position: str = "pre"
    """"pre": each sublayer reads a normalised copy of the residual stream and the stacks end in a norm
    (fast to start, forgiving of high learning rates); "post": the sum of the stream and each sublayer's
    output is normalised (Vaswani et al., Marian), no final norms: slower to start, lower loss given a few
    thousand steps at a low learning rate."""
    scale_embeddings: bool = False
    """Multiply the input embeddings by sqrt(d_model) (Vaswani et al.), as post-norm models do."""
    init_std: float = 0.02
    """Standard deviation of the normal initialisation of every weight matrix."""

    def __post_init__(self) -> None:
        if self.d_ff is None:
            self.d_ff = 2 * self.d_model
        checks = [
            (min(self.src_vocab_size, self.tgt_vocab_size, self.enc_layers, self.dec_layers, self.max_seq_len,
                 self.d_ff) > 0, "sizes and layer counts must be positive"),
            (self.n_heads > 0 and self.d_model % self.n_heads == 0,
             f"--n-heads {self.n_heads} must divide --d-model {self.d_model}"),
            ((self.d_model // max(self.n_heads, 1)) % 2 == 0, "head size d_model / n_heads must be even for RoPE"),
            (0.0 <= self.dropout < 1.0 and 0.0 <= self.attn_dropout < 1.0, "dropouts must be in [0, 1)"),
            (not self.share_embeddings or self.src_vocab_size == self.tgt_vocab_size,
             "--share-embeddings needs one vocabulary for both sides"),
            (self.norm_position in NORM_POSITIONS, f"--norm-position must be one of {', '.join(NORM_POSITIONS)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


PRESETS: dict[str, dict] = {
    # low-resource settings (Araabi & Monz 2020) shrunk to a CPU: few narrow layers; `tiny` trains for
    # minutes, where it underfits: 2+2 layers with dropout 0.1 beat 3+3 and heavier dropout. Post-norm with
    # embeddings scaled by sqrt(d_model) at LR 5e-4 (the recipes' tiny LR) reached val loss 2.46 in 10
    # minutes on gettext en-de against 3.06 for pre-norm at 2e-3 (bench/translation_recipe.py --budget 600);
    # pre-norm starts faster and is ahead for the first ~3 minutes
    "tiny": dict(d_model=256, n_heads=4, enc_layers=2, dec_layers=2, dropout=0.1, attn_dropout=0.0,
                 norm_position="post", scale_embeddings=True),
    "small": dict(d_model=384, n_heads=6, enc_layers=4, dec_layers=4, dropout=0.3),
    "base": dict(d_model=512, n_heads=8, enc_layers=6, dec_layers=6, d_ff=2048, dropout=0.1, attn_dropout=0.0),
}


class SelfAttention(nn.Module):
    """Multi-head self-attention with rotary positions; causal with a cache in the decoder."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_heads, self.head_dim = config.n_heads, config.head_dim
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.out = nn.Linear(config.d_model, config.d_model, bias=False)
        self.attn_dropout = config.attn_dropout

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor], mask: Tensor | None, causal: bool,
                cache: KVCache | None = None, layer: int = 0, step: CacheStep | None = None) -> Tensor:
        B, T, _ = x.shape
        qkv = self.qkv(x).view(B, T, 3 * self.n_heads, self.head_dim)
        qk = apply_rope(qkv[:, :, :2 * self.n_heads], *rope)
        q, k = qk[:, :, :self.n_heads].transpose(1, 2), qk[:, :, self.n_heads:].transpose(1, 2)   # (B, H, T, hd)
        v = qkv[:, :, 2 * self.n_heads:].transpose(1, 2)
        if cache is not None:
            k, v = cache.store(layer, k, v, step)                                 # (B, H, S, hd)
            mask, causal = cached_mask(step, x.device)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           dropout_p=self.attn_dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(B, T, -1))


class CrossAttention(nn.Module):
    """Decoder queries against the encoder states (no positions: the source order is in the states)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_heads, self.head_dim = config.n_heads, config.head_dim
        self.q = nn.Linear(config.d_model, config.d_model, bias=False)
        self.kv = nn.Linear(config.d_model, 2 * config.d_model, bias=False)
        self.out = nn.Linear(config.d_model, config.d_model, bias=False)
        self.attn_dropout = config.attn_dropout

    def keys_values(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        B, S, _ = memory.shape
        kv = self.kv(memory).view(B, S, 2, self.n_heads, self.head_dim)
        return kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)          # (B, H, S, hd) each

    def forward(self, x: Tensor, kv: tuple[Tensor, Tensor], mask: Tensor, weights: list | None = None,
                group: int = 1) -> Tensor:
        """Queries of B rows against the keys/values (N, H, S, hd) of N = B / group sources, `group`
        consecutive rows per source (a sentence's beams), whose queries are read as one source's; `mask`
        (N, 1, 1, S) marks the real source tokens; with `weights`, the attention weights (N, H, group * T, S)
        are appended to it."""
        B, T, _ = x.shape
        q = self.q(x).view(B // group, group * T, self.n_heads, self.head_dim).transpose(1, 2)   # (N, H, gT, hd)
        k, v = kv
        if weights is not None:   # the explicit form, whose weights an attention map shows
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
            probs = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)      # (B, H, T, S)
            weights.append(probs)
            y = probs @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                               dropout_p=self.attn_dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(B, T, -1))


def residual(x: Tensor, norm: nn.Module, sublayer, dropout: nn.Module, post: bool) -> Tensor:
    """One residual sublayer: x + sublayer(norm(x)) in pre-norm, norm(x + sublayer(x)) in post-norm."""
    if post:
        return norm(x + dropout(sublayer(x)))
    return x + dropout(sublayer(norm(x)))


class EncoderBlock(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.post = config.norm_position == "post"
        self.attn_norm, self.mlp_norm = RMSNorm(config.d_model, config.norm_eps), RMSNorm(config.d_model,
                                                                                          config.norm_eps)
        self.attn = SelfAttention(config)
        self.mlp = SwiGLU(config.d_model, config.d_ff)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, rope, mask: Tensor) -> Tensor:
        x = residual(x, self.attn_norm, lambda h: self.attn(h, rope, mask, causal=False), self.dropout, self.post)
        return residual(x, self.mlp_norm, self.mlp, self.dropout, self.post)


class DecoderBlock(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.post = config.norm_position == "post"
        self.attn_norm = RMSNorm(config.d_model, config.norm_eps)
        self.attn = SelfAttention(config)
        self.cross_norm = RMSNorm(config.d_model, config.norm_eps)
        self.cross = CrossAttention(config)
        self.mlp_norm = RMSNorm(config.d_model, config.norm_eps)
        self.mlp = SwiGLU(config.d_model, config.d_ff)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, rope, kv: tuple[Tensor, Tensor], src_mask: Tensor, cache: KVCache | None,
                layer: int, step: CacheStep | None, weights: list | None, group: int = 1) -> Tensor:
        causal = x.size(1) > 1
        x = residual(x, self.attn_norm, lambda h: self.attn(h, rope, None, causal, cache, layer, step), self.dropout,
                     self.post)
        x = residual(x, self.cross_norm, lambda h: self.cross(h, kv, src_mask, weights, group), self.dropout, self.post)
        return residual(x, self.mlp_norm, self.mlp, self.dropout, self.post)


@dataclass
class TransformerState:
    """A batch's decoding: the decoder's self-attention cache (a row each) and every layer's cross-attention
    keys and values of the batch's N sources (computed once), read by `group` consecutive rows each."""

    cache: KVCache
    cross: list[tuple[Tensor, Tensor]]     # per decoder layer, (N, H, S, hd) each
    src_mask: Tensor                       # (N, 1, 1, S)
    group: int = 1                         # rows per source (beam search: the beams)

    def select(self, index: Tensor) -> TransformerState:
        keep, group = regroup(self.group, self.src_mask.size(0), index)
        cross, src_mask = self.cross, self.src_mask
        if keep is not None:   # sentences left (or rows were shuffled): their keys/values go too
            cross, src_mask = [(k[keep], v[keep]) for k, v in cross], src_mask[keep]
        return TransformerState(self.cache.reorder(index), cross, src_mask, group)


class Transformer(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        c = self.config = config
        self.src_embed = nn.Embedding(c.src_vocab_size, c.d_model)
        self.tgt_embed = self.src_embed if c.share_embeddings else nn.Embedding(c.tgt_vocab_size, c.d_model)
        final_norm = (lambda: RMSNorm(c.d_model, c.norm_eps)) if c.norm_position == "pre" else nn.Identity
        self.encoder = nn.ModuleList(EncoderBlock(c) for _ in range(c.enc_layers))
        self.enc_norm = final_norm()      # post-norm blocks end normalised already
        self.decoder = nn.ModuleList(DecoderBlock(c) for _ in range(c.dec_layers))
        self.dec_norm = final_norm()
        self.embed_scale = math.sqrt(c.d_model) if c.scale_embeddings else 1.0
        self.lm_head = nn.Linear(c.d_model, c.tgt_vocab_size, bias=False)
        if c.tie_embeddings:
            self.lm_head.weight = self.tgt_embed.weight
        self.rope = RotaryEmbedding(c.head_dim, c.max_seq_len, c.rope_theta)
        self.dropout = nn.Dropout(c.dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal(0, init_std) weights; residual output projections scaled by 1/sqrt(2 * layers)."""
        std, layers = self.config.init_std, self.config.enc_layers + self.config.dec_layers
        for name, param in self.named_parameters():
            if param.dim() < 2:
                continue
            scale = 1 / math.sqrt(2 * layers) if name.endswith(("out.weight", "down.weight")) else 1
            nn.init.normal_(param, mean=0.0, std=std * scale)

    def _check_length(self, T: int) -> None:
        if self.config.max_seq_len < T:
            raise ValueError(f"sequence of {T} tokens exceeds max_seq_len {self.config.max_seq_len}")

    def encode(self, src: Tensor, src_mask: Tensor) -> EncoderOutput:
        """The source states (B, S, d_model); `src_mask` (B, S) marks the real tokens."""
        self._check_length(src.size(1))
        x = self.dropout(self.src_embed(src) * self.embed_scale)
        rope, mask = self.rope(0, src.size(1)), src_mask[:, None, None, :]
        for block in self.encoder:
            x = block(x, rope, mask)
        return EncoderOutput(self.enc_norm(x), src_mask)

    def _decode(self, tgt: Tensor, cross: list, src_mask: Tensor, cache: KVCache | None = None,
                positions: Tensor | None = None, weights: list | None = None, group: int = 1) -> Tensor:
        T = tgt.size(1)
        x = self.dropout(self.tgt_embed(tgt) * self.embed_scale)
        step = None
        if cache is None:
            self._check_length(T)
            rope = self.rope(0, T)
        else:
            step = cache.plan(positions)
            rope = self.rope(step.starts[0], T) if step.uniform else self.rope.at(positions)
        for layer, block in enumerate(self.decoder):
            x = block(x, rope, cross[layer], src_mask, cache, layer, step, weights, group)
        if cache is not None:
            cache.advance(step)
        return self.dec_norm(x)

    def hidden(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: the decoder's final states (B, T, d_model) that lm_head maps to the logits of
        each next target token."""
        memory = self.encode(src, src_mask)
        cross = [block.cross.keys_values(memory.states) for block in self.decoder]
        return self._decode(tgt_in, cross, src_mask[:, None, None, :])

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor) -> Tensor:
        return self.lm_head(self.hidden(src, src_mask, tgt_in))                   # (B, T, tgt_vocab_size)

    def attention_maps(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor) -> Tensor:
        """Cross-attention weights (layers, B, heads, T, S) of each target token over the source."""
        memory = self.encode(src, src_mask)
        cross = [block.cross.keys_values(memory.states) for block in self.decoder]
        weights: list[Tensor] = []
        self._decode(tgt_in, cross, src_mask[:, None, None, :], weights=weights)
        return torch.stack(weights)

    # --- the decoder protocol (inference/decoding.py) ------------------------------------------
    @property
    def max_context(self) -> int:
        return self.config.max_seq_len

    def new_state(self, batch_size: int, max_len: int | None = None, memory: EncoderOutput | None = None,
                  device=None, dtype=None) -> TransformerState:
        """An empty self-attention cache for `batch_size` rows of up to `max_len` target tokens, and the
        cross-attention keys/values of the sources `memory` (what `encode` gave)."""
        if memory is None or memory.states.size(0) != batch_size:
            raise ValueError(f"an encoder-decoder model needs the encoder output of its {batch_size} sources")
        c = self.config
        cache = KVCache(c.dec_layers, batch_size, c.n_heads, min(max_len or c.max_seq_len, c.max_seq_len),
                        c.head_dim, device=memory.states.device, dtype=memory.states.dtype)
        cross = [block.cross.keys_values(memory.states) for block in self.decoder]
        return TransformerState(cache, cross, memory.mask[:, None, None, :])

    def step(self, tokens: Tensor, positions: Tensor, state: TransformerState,
             keep_last: int | None = None) -> tuple[Tensor, TransformerState]:
        hidden = self._decode(tokens, state.cross, state.src_mask, state.cache, positions, group=state.group)
        if keep_last is not None:
            hidden = hidden[:, -keep_last:]
        return self.lm_head(hidden), state

    def reorder(self, state: TransformerState, index: Tensor) -> TransformerState:
        return state.select(index)

    def truncate(self, state: TransformerState, lengths: list[int]) -> TransformerState:
        state.cache.truncate(lengths)
        return state

    def num_params(self, embeddings: bool = True) -> int:
        total = sum(p.numel() for p in self.parameters())
        if embeddings:
            return total
        shared = {id(self.src_embed.weight), id(self.tgt_embed.weight)}
        return total - sum(p.numel() for p in self.parameters() if id(p) in shared)

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token read (source and target alike, about as many of each): a source token meets
        the encoder, a target token the decoder and the output projection, so each costs 6 * those weights and
        the mean is half their sum; plus attention over seq_len (PaLM appendix B)."""
        c = self.config
        seq_len = seq_len or c.max_seq_len
        weights = self.num_params(embeddings=False) + self.lm_head.weight.numel()
        attention = 12 * (c.enc_layers + 2 * c.dec_layers) * c.d_model * seq_len // 2
        return 3 * weights + attention
