"""The recurrent encoder-decoder (Sutskever et al. 2014; Bahdanau et al. 2015; Luong et al. 2015): a
(bidirectional, stacked) GRU or LSTM reads the source; a GRU or LSTM decoder writes the target, starting
from the encoder's final state and, with attention, looking back at every source state at every step.

Attention, as each paper places it:
- `none`: the encoder's final state is all the decoder gets (the baseline attention was invented to beat).
- `bahdanau`: additive scores v . tanh(W q + U s_j) of the *previous* decoder state q against each source
  state s_j; the context is an input of the recurrent step.
- `luong-dot` / `luong-general`: multiplicative scores q . s_j or q . W s_j of the *new* decoder state;
  the context and the state make the attentional state tanh(W_c [c; h]), which (with `input_feeding`) is
  also an input of the next step.
Every variant ends in an attentional vector of the embedding size, so the output projection can be tied
to the target embedding (Press & Wolf 2017)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lmforge.models.layers import EncoderOutput, regroup

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}
ATTENTIONS = ("none", "bahdanau", "luong-dot", "luong-general")
State = tuple[Tensor, ...]   # (h,) for a GRU, (h, c) for an LSTM; each (layers, B, d_hidden)


@dataclass
class Seq2SeqRNNConfig:
    src_vocab_size: int = 8000
    """Source tokens in the vocabulary (taken from the pair shards when training)."""
    tgt_vocab_size: int = 8000
    """Target tokens in the vocabulary (taken from the pair shards when training)."""
    cell: str = field(default="gru", metadata={"cli": False})
    """gru or lstm; chosen by --model (seq2seq-gru, seq2seq-lstm), not by a flag."""
    attention: str = field(default="bahdanau", metadata={"choices": ATTENTIONS})
    """none, bahdanau (additive, on the previous state), luong-dot or luong-general (on the new state)."""
    input_feeding: bool = True
    """Luong attention: the previous attentional vector is an input of the next step."""
    d_embed: int = 256
    """Token embedding size (and the size of the attentional vector the output reads)."""
    d_hidden: int = 256
    """Decoder state size; also the encoder's output size (both directions together)."""
    d_attention: int | None = None
    """Hidden size of additive (Bahdanau) attention; None means d_hidden."""
    enc_layers: int = 1
    """Stacked encoder layers."""
    dec_layers: int = 1
    """Stacked decoder layers."""
    bidirectional: bool = True
    """Read the source in both directions (each direction d_hidden / 2)."""
    dropout: float = 0.3
    """Dropout on embeddings, between layers and on the attentional vector."""
    share_embeddings: bool = False
    """One embedding matrix for source and target (needs one tokenizer for both sides)."""
    tie_embeddings: bool = True
    """The output projection is the target embedding."""
    max_seq_len: int = 256
    """Longest source or target the run trains on (tokens); longer training pairs are skipped."""

    def __post_init__(self) -> None:
        if self.d_attention is None:
            self.d_attention = self.d_hidden
        checks = [
            (self.cell in CELLS, f"cell must be gru or lstm, got {self.cell!r}"),
            (self.attention in ATTENTIONS,
             f"--attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}"),
            (min(self.src_vocab_size, self.tgt_vocab_size, self.d_embed, self.d_hidden, self.d_attention,
                 self.enc_layers, self.dec_layers, self.max_seq_len) > 0, "sizes and layer counts must be positive"),
            (not self.bidirectional or self.d_hidden % 2 == 0, f"--d-hidden {self.d_hidden} must be even for a "
                                                              "bidirectional encoder"),
            (0.0 <= self.dropout < 1.0, f"--dropout must be in [0, 1), got {self.dropout}"),
            (not self.share_embeddings or self.src_vocab_size == self.tgt_vocab_size,
             "--share-embeddings needs one vocabulary for both sides"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def feeds_input(self) -> bool:
        return self.input_feeding and self.attention.startswith("luong")


PRESETS: dict[str, dict] = {
    # small data (Sennrich & Zhang 2019): one narrow layer each side; `tiny` trains for minutes on a CPU,
    # where the model underfits and light dropout wins (0.1 without word dropout: val loss 2.94 after 4
    # minutes on gettext en-de, against 3.46 with 0.3 and word dropout 0.1); the longer-running sizes keep
    # the heavy dropout of the recipe
    "tiny": dict(d_embed=256, d_hidden=256, enc_layers=1, dec_layers=1, dropout=0.1),
    "small": dict(d_embed=512, d_hidden=512, enc_layers=2, dec_layers=2, dropout=0.3),
    "base": dict(d_embed=512, d_hidden=1024, enc_layers=2, dec_layers=2, dropout=0.2),
}


class Attention(nn.Module):
    """Scores of decoder queries (B, T, d_hidden) against the encoder states (B, S, d_hidden), softmaxed
    over the real source tokens; the keys of a sentence are computed once (`keys`)."""

    def __init__(self, config: Seq2SeqRNNConfig):
        super().__init__()
        self.kind, d = config.attention, config.d_hidden
        if self.kind == "bahdanau":
            self.key = nn.Linear(d, config.d_attention, bias=False)
            self.query = nn.Linear(d, config.d_attention)
            self.v = nn.Linear(config.d_attention, 1, bias=False)
        elif self.kind == "luong-general":
            self.key = nn.Linear(d, d, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        return memory if self.kind == "luong-dot" else self.key(memory)     # (B, S, d_attention or d)

    def forward(self, queries: Tensor, keys: Tensor, memory: EncoderOutput, group: int = 1) -> tuple[Tensor, Tensor]:
        """(contexts (B, T, d_hidden), weights (B, T, S)) of queries (B, T, d_hidden) against the N = B / group
        sources of `memory`, `group` consecutive rows per source (a sentence's beams, read together)."""
        B, T, _ = queries.shape
        queries = queries.reshape(B // group, group * T, -1)
        if self.kind == "bahdanau":
            scores = self.v(torch.tanh(self.query(queries)[:, :, None] + keys[:, None])).squeeze(-1)   # (N, gT, S)
        else:
            scores = queries @ keys.transpose(1, 2)                                                      # (N, gT, S)
        scores = scores.masked_fill(~memory.mask[:, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)                                           # (N, gT, S)
        return (weights @ memory.states).view(B, T, -1), weights.view(B, T, -1)


@dataclass
class RNNDecoderState:
    """A batch's decoding: the decoder layers' states and the last attentional vector (input feeding) of
    each row, the encoder memory of the N sources with its attention keys, read by `group` consecutive rows
    each (a sentence's beams), and the tokens read per row."""

    layers: State                # (dec_layers, B, d_hidden) each
    feed: Tensor | None          # (B, d_embed)
    memory: EncoderOutput        # (N, S, d_hidden) states
    keys: Tensor | None          # (N, S, d)
    lengths: list[int]
    group: int = 1               # rows per source (beam search: the beams)

    def select(self, index: Tensor) -> RNNDecoderState:
        keep, group = regroup(self.group, self.memory.states.size(0), index)
        memory, keys = self.memory, self.keys
        if keep is not None:   # sentences left (or rows were shuffled): their memory goes too
            memory, keys = memory.select(keep), None if keys is None else keys[keep]
        return RNNDecoderState(tuple(s[:, index] for s in self.layers),
                               None if self.feed is None else self.feed[index], memory, keys,
                               [self.lengths[i] for i in index.tolist()], group)


class Seq2SeqRNN(nn.Module):
    def __init__(self, config: Seq2SeqRNNConfig):
        super().__init__()
        c = self.config = config
        self.src_embed = nn.Embedding(c.src_vocab_size, c.d_embed)
        self.tgt_embed = self.src_embed if c.share_embeddings else nn.Embedding(c.tgt_vocab_size, c.d_embed)
        directions = 2 if c.bidirectional else 1
        self.encoder = CELLS[c.cell](c.d_embed, c.d_hidden // directions, c.enc_layers, batch_first=True,
                                     bidirectional=c.bidirectional, dropout=c.dropout if c.enc_layers > 1 else 0.0)
        # the decoder starts from tanh(W h_enc) of the encoder's top final state, for every decoder layer
        self.bridge = nn.ModuleList(nn.Linear(c.d_hidden, c.dec_layers * c.d_hidden)
                                    for _ in range(2 if c.cell == "lstm" else 1))
        extra = c.d_hidden if c.attention == "bahdanau" else c.d_embed if c.feeds_input else 0
        self.decoder = CELLS[c.cell](c.d_embed + extra, c.d_hidden, c.dec_layers, batch_first=True,
                                     dropout=c.dropout if c.dec_layers > 1 else 0.0)
        self.attention = Attention(c) if c.attention != "none" else None
        self.combine = nn.Linear(c.d_hidden * (2 if self.attention else 1), c.d_embed, bias=False)
        self.lm_head = nn.Linear(c.d_embed, c.tgt_vocab_size, bias=False)
        if c.tie_embeddings:
            self.lm_head.weight = self.tgt_embed.weight
        self.dropout = nn.Dropout(c.dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-0.1, 0.1) everywhere (the classic recurrent NMT initialisation), embeddings N(0, 0.1)."""
        for name, param in self.named_parameters():
            if "embed" in name:
                nn.init.normal_(param, std=0.1)
            else:
                nn.init.uniform_(param, -0.1, 0.1)

    # --- encoder -----------------------------------------------------------------------------------
    def encode(self, src: Tensor, src_mask: Tensor) -> EncoderOutput:
        """The source states (B, S, d_hidden) and the decoder's first state; `src_mask` (B, S) marks the real
        tokens (right padding)."""
        c = self.config
        x = self.dropout(self.src_embed(src))                                      # (B, S, d_embed)
        lengths = src_mask.sum(dim=1).clamp_min(1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, final = self.encoder(packed)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))   # (B, S, d_hidden)
        final = final if isinstance(final, tuple) else (final,)
        directions = 2 if c.bidirectional else 1
        B = src.size(0)
        # (layers * directions, B, d/dirs) -> the top layer's directions side by side: (B, d_hidden)
        tops = [f.view(c.enc_layers, directions, B, -1)[-1].transpose(0, 1).reshape(B, -1) for f in final]
        start = tuple(torch.tanh(bridge(top)).view(B, c.dec_layers, c.d_hidden).transpose(0, 1).contiguous()
                      if k == 0 else bridge(top).view(B, c.dec_layers, c.d_hidden).transpose(0, 1).contiguous()
                      for k, (bridge, top) in enumerate(zip(self.bridge, tops)))
        return EncoderOutput(self.dropout(states), src_mask, start)

    # --- decoder -----------------------------------------------------------------------------------
    def _cell(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        out, new = self.decoder(x, state if self.config.cell == "lstm" else state[0])
        return out, new if isinstance(new, tuple) else (new,)

    def _attend_out(self, h: Tensor, context: Tensor | None) -> Tensor:
        mixed = h if context is None else torch.cat([context, h], dim=-1)
        return torch.tanh(self.combine(mixed))                                     # (B, T, d_embed)

    def _decode(self, tgt: Tensor, state: RNNDecoderState, weights: list | None = None) -> tuple[Tensor, State]:
        """Attentional vectors (B, T, d_embed) of the target tokens `tgt` read after `state` (whose layers,
        feed and lengths are updated); each step's attention weights are appended to `weights`."""
        y = self.dropout(self.tgt_embed(tgt))                                      # (B, T, d_embed)
        kind = self.config.attention
        if kind in ("none",) or (kind.startswith("luong") and not self.config.feeds_input):
            h, state.layers = self._cell(y, state.layers)                         # the whole target at once
            context = None
            if self.attention is not None:
                context, w = self.attention(h, state.keys, state.memory, state.group)
                if weights is not None:
                    weights.append(w)
            return self._attend_out(h, context), state.layers
        outputs = []
        for t in range(tgt.size(1)):                                              # a step depends on the last
            x = y[:, t:t + 1]
            if kind == "bahdanau":
                context, w = self.attention(state.layers[0][-1][:, None], state.keys, state.memory, state.group)
                h, state.layers = self._cell(torch.cat([x, context], dim=-1), state.layers)
            else:
                feed = state.feed if state.feed is not None else x.new_zeros(x.size(0), self.config.d_embed)
                h, state.layers = self._cell(torch.cat([x, feed[:, None]], dim=-1), state.layers)
                context, w = self.attention(h, state.keys, state.memory, state.group)
            out = self._attend_out(h, context)                                    # (B, 1, d_embed)
            state.feed = out[:, 0]
            outputs.append(out)
            if weights is not None:
                weights.append(w)
        return torch.cat(outputs, dim=1), state.layers

    def _start(self, memory: EncoderOutput) -> RNNDecoderState:
        keys = self.attention.keys(memory.states) if self.attention is not None else None
        return RNNDecoderState(memory.start, None, memory, keys, [0] * memory.states.size(0))

    def hidden(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: the attentional vectors (B, T, d_embed) that lm_head maps to the logits of
        each next target token; `src_mask` (B, S) marks real source tokens (right padding)."""
        out, _ = self._decode(tgt_in, self._start(self.encode(src, src_mask)))
        return self.dropout(out)

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor) -> Tensor:
        return self.lm_head(self.hidden(src, src_mask, tgt_in))                   # (B, T, tgt_vocab_size)

    def attention_maps(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor) -> Tensor:
        """Attention weights (1, B, 1, T, S) of each target token over the source (layers and heads of one);
        a model without attention has none."""
        if self.attention is None:
            raise ValueError("a sequence-to-sequence model trained with --attention none has no attention")
        weights: list[Tensor] = []
        self._decode(tgt_in, self._start(self.encode(src, src_mask)), weights)
        return torch.cat(weights, dim=1)[None, :, None]

    # --- the decoder protocol (inference/decoding.py) ------------------------------------------
    max_context = None

    def new_state(self, batch_size: int, max_len: int | None = None, memory: EncoderOutput | None = None,
                  device=None, dtype=None) -> RNNDecoderState:
        """The state of `batch_size` rows about to translate the sources `memory` (what `encode` gave)."""
        if memory is None or memory.states.size(0) != batch_size:
            raise ValueError(f"a sequence-to-sequence decoder needs the encoder output of its {batch_size} sources")
        return self._start(memory)

    def step(self, tokens: Tensor, positions: Tensor, state: RNNDecoderState,
             keep_last: int | None = None) -> tuple[Tensor, RNNDecoderState]:
        """Logits (B, T, V) of `tokens` (B, T) read after each row's state; every row reads every column
        (translation starts every row with the same BOS, so there is no padding)."""
        if bool((positions < 0).any()):
            raise ValueError("a recurrent decoder reads no padded chunks")
        out, _ = self._decode(tokens, state)
        state.lengths = [n + tokens.size(1) for n in state.lengths]
        if keep_last is not None:
            out = out[:, -keep_last:]
        return self.lm_head(out), state

    def reorder(self, state: RNNDecoderState, index: Tensor) -> RNNDecoderState:
        return state.select(index)

    def truncate(self, state: RNNDecoderState, lengths: list[int]) -> RNNDecoderState:
        if list(lengths) != state.lengths:
            raise ValueError("a recurrent decoder state cannot be cut back")
        return state

    def num_params(self, embeddings: bool = True) -> int:
        total = sum(p.numel() for p in self.parameters())
        if embeddings:
            return total
        shared = {id(self.src_embed.weight), id(self.tgt_embed.weight)}
        return total - sum(p.numel() for p in self.parameters() if id(p) in shared)

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token read (source and target alike, about as many of each): a source token meets
        the encoder, a target token the decoder, attention and the output projection; the mean is half of
        6 * all the matrix weights (attention over the source is left out)."""
        return 3 * (self.num_params(embeddings=False) + self.lm_head.weight.numel())
