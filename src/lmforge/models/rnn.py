"""Recurrent language models: Elman (tanh) RNN, LSTM and GRU over token embeddings, with tied
embeddings as an option. The hidden state is carried by the caller (truncated BPTT in training,
the decoder state in generation) and can be reset per row where a new document starts."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
State = tuple[Tensor, ...]  # (h,) for rnn/gru, (h, c) for lstm; each (n_layers, B, d_model)


@dataclass
class LastStep:
    """What the latest decoder step read, so a state can be cut back inside it."""

    before: State
    tokens: Tensor            # (B, T)
    positions: Tensor         # (B, T)
    counts: list[int]         # real tokens per row


@dataclass
class RecurrentState:
    """The decoder state of a batch: the layers' states, tokens read per row, and the last step."""

    layers: State
    lengths: list[int]
    last: LastStep | None = None

    def reorder(self, index: Tensor) -> RecurrentState:
        rows = index.tolist()
        last = None if self.last is None else LastStep(
            tuple(s[:, index] for s in self.last.before), self.last.tokens[index], self.last.positions[index],
            [self.last.counts[i] for i in rows])
        return RecurrentState(tuple(s[:, index] for s in self.layers), [self.lengths[i] for i in rows], last)


@dataclass
class RNNConfig:
    vocab_size: int = 8192
    """Tokens in the vocabulary; must match the tokenizer (taken from the shards when training)."""
    cell: str = field(default="lstm", metadata={"cli": False})
    """rnn (Elman, tanh), lstm or gru; chosen by --model, not by a flag."""
    d_model: int = 256
    """Hidden state size of every recurrent layer."""
    d_embed: int | None = None
    """Token embedding size; None means d_model (needed for --tie-embeddings)."""
    n_layers: int = 2
    """Stacked recurrent layers."""
    dropout: float = 0.1
    """Dropout on the embeddings, between recurrent layers and on the output states."""
    tie_embeddings: bool = True
    """Share the input embedding and output projection weights (Press & Wolf, Inan et al.)."""

    def __post_init__(self) -> None:
        if self.d_embed is None:
            self.d_embed = self.d_model
        checks = [
            (self.cell in CELLS, f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}"),
            (self.vocab_size > 0, f"--vocab-size must be positive, got {self.vocab_size}"),
            (self.d_model > 0 and self.d_embed > 0, "--d-model and --d-embed must be positive"),
            (self.n_layers > 0, f"--n-layers must be positive, got {self.n_layers}"),
            (0.0 <= self.dropout < 1.0, f"--dropout must be in [0, 1), got {self.dropout}"),
            (not self.tie_embeddings or self.d_embed == self.d_model,
             f"--tie-embeddings needs --d-embed equal to --d-model ({self.d_embed} != {self.d_model})"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def open_forget_gates(lstm: nn.LSTM) -> None:
    """Start every forget gate open (input bias 1; Jozefowicz et al.), in each layer and direction."""
    d = lstm.hidden_size
    for name, param in lstm.named_parameters():
        if name.startswith("bias_ih"):
            with torch.no_grad():
                param[d:2 * d].fill_(1.0)  # gate order: input, forget, cell, output


PRESETS: dict[str, dict] = {
    "tiny": dict(n_layers=2, d_model=256),
    "small": dict(n_layers=2, d_model=512),
    "medium": dict(n_layers=3, d_model=1024, dropout=0.2),
}


class RNNLM(nn.Module):
    def __init__(self, config: RNNConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_embed)
        self.dropout = nn.Dropout(config.dropout)
        extra = {"nonlinearity": "tanh"} if config.cell == "rnn" else {}
        self.rnn = CELLS[config.cell](config.d_embed, config.d_model, config.n_layers, batch_first=True,
                                      dropout=config.dropout if config.n_layers > 1 else 0.0, **extra)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed.weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Embeddings uniform(-0.1, 0.1) as in the classic recipes; LSTM forget gates start open (bias 1)."""
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        if not self.config.tie_embeddings:
            nn.init.uniform_(self.lm_head.weight, -0.1, 0.1)
        if self.config.cell == "lstm":
            open_forget_gates(self.rnn)

    def _run(self, x: Tensor, state: State | None) -> tuple[Tensor, State]:
        if self.config.cell == "lstm":
            out, (h, c) = self.rnn(x, state)
            return out, (h, c)
        out, h = self.rnn(x, None if state is None else state[0])
        return out, (h,)

    def hidden(self, tokens: Tensor, state: State | None = None,
               resets: Tensor | None = None) -> tuple[Tensor, State]:
        """Output states (B, T, d_model) and the state after the last token. `resets` (B, T) marks the
        tokens before which a row's state is zeroed (a new document starts there): the window is cut
        at those columns and run piece by piece, so a reset is exact, and free where there is none."""
        x = self.dropout(self.embed(tokens))                                  # (B, T, d_embed)
        T = tokens.size(1)
        columns = [] if resets is None else resets.any(dim=0).nonzero().flatten().tolist()
        bounds = sorted({0, T, *columns})
        pieces = []
        for start, end in zip(bounds, bounds[1:]):
            if state is not None and resets is not None and resets[:, start].any():
                keep = (~resets[:, start]).to(x.dtype)[None, :, None]        # (1, B, 1)
                state = tuple(s * keep for s in state)
            out, state = self._run(x[:, start:end], state)                   # (B, end - start, d_model)
            pieces.append(out)
        out = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)    # (B, T, d_model)
        return self.dropout(out), state

    def forward(self, tokens: Tensor, state: State | None = None) -> Tensor:
        """Logits (B, T, vocab_size) of a sequence read from `state` (zeros when None)."""
        return self.lm_head(self.hidden(tokens, state)[0])

    # --- the decoder protocol (inference/decoding.py) ------------------------------------------
    max_context = None  # a recurrent state summarises any length of context

    def new_state(self, batch_size: int, max_len: int | None = None, memory: Tensor | None = None,
                  device=None, dtype=None) -> RecurrentState:
        """Zero states for `batch_size` rows (any length fits; a language model reads no encoder memory)."""
        if memory is not None:
            raise ValueError("a recurrent language model reads no encoder memory")
        shape = (self.config.n_layers, batch_size, self.config.d_model)
        count = 2 if self.config.cell == "lstm" else 1
        return RecurrentState(tuple(torch.zeros(shape, device=device, dtype=dtype) for _ in range(count)),
                              [0] * batch_size)

    def step(self, tokens: Tensor, positions: Tensor, state: RecurrentState,
             keep_last: int | None = None) -> tuple[Tensor, RecurrentState]:
        """Logits (B, T, vocab_size) for `tokens` after each row's state (or for the last `keep_last`
        columns). Padding (positions < 0, before a row's tokens) leaves a row's state as it was; a token
        at position 0 starts its row from a zero state."""
        out, layers = self._read(tokens, positions, state.layers)
        counts = (positions >= 0).sum(dim=1).tolist()
        new = RecurrentState(layers, [n + c for n, c in zip(state.lengths, counts)],
                             LastStep(state.layers, tokens, positions, counts))
        if keep_last is not None:
            out = out[:, -keep_last:]
        return self.lm_head(out), new

    def _read(self, tokens: Tensor, positions: Tensor, state: State) -> tuple[Tensor, State]:
        """Output states (B, T, d) and the states after the chunk: pieces between the columns where a
        row's tokens begin, rows still in their padding keeping their state through a piece."""
        T = tokens.size(1)
        real = positions >= 0                                                   # (B, T)
        first = torch.where(real.any(dim=1), real.float().argmax(dim=1), torch.full_like(real[:, 0], T,
                                                                                        dtype=torch.long))
        bounds = sorted({0, T, *first.tolist()})
        pieces = []
        for start, end in zip(bounds, bounds[1:]):
            resets = (positions[:, start] == 0)                                 # (B,)
            if resets.any():
                keep = (~resets).to(state[0].dtype)[None, :, None]              # (1, B, 1)
                state = tuple(s * keep for s in state)
            out, after = self.hidden(tokens[:, start:end], state)              # (B, end - start, d)
            waiting = (first >= end)[None, :, None]                             # rows with no token yet
            state = tuple(torch.where(waiting, s, a) for s, a in zip(state, after))
            pieces.append(out)
        return (pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)), state

    def reorder(self, state: RecurrentState, index: Tensor) -> RecurrentState:
        return state.reorder(index)

    def truncate(self, state: RecurrentState, lengths: list[int]) -> RecurrentState:
        """Cut rows back to lengths[b] tokens: possible within the last step (speculative decoding
        rejects drafts of the step that read them), by re-reading that step's kept tokens."""
        if list(lengths) == state.lengths:
            return state
        last = state.last
        kept = None if last is None else [new - (old - count) for new, old, count in
                                          zip(lengths, state.lengths, last.counts)]
        if kept is None or any(k < 0 or k > c for k, c in zip(kept, last.counts)):
            raise ValueError(f"a recurrent state can be cut back only within its last step "
                             f"(lengths {state.lengths} -> {list(lengths)})")
        return RecurrentState(self._replay(last, kept), list(lengths), None)

    def join(self, state: RecurrentState, other: RecurrentState) -> RecurrentState:
        """The rows of `state`, then those of `other` (continuous batching: new requests join); the joined
        state can be cut back again only after its next step."""
        return RecurrentState(tuple(torch.cat([a, b], dim=1) for a, b in zip(state.layers, other.layers)),
                              state.lengths + other.lengths, None)

    def _replay(self, last: LastStep, kept: list[int]) -> State:
        """The state of each row after the first kept[b] real tokens of the last step."""
        T = last.tokens.size(1)
        state, result = last.before, [s.clone() for s in last.before]
        for column in range(T):
            _, state = self._read(last.tokens[:, column:column + 1], last.positions[:, column:column + 1], state)
            done = torch.tensor([T - c + k - 1 == column for c, k in zip(last.counts, kept)],
                                device=state[0].device)[None, :, None]
            result = [torch.where(done, s, r) for s, r in zip(state, result)]
        return tuple(result)

    # --- size ------------------------------------------------------------------------------------
    def num_params(self, embeddings: bool = True) -> int:
        total = sum(p.numel() for p in self.parameters())
        return total if embeddings else total - self.embed.weight.numel()

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token: 6 * (recurrent matrices + output head); every weight is used
        once per token in a matrix product, forward and twice backward."""
        recurrent = sum(p.numel() for name, p in self.rnn.named_parameters() if name.startswith("weight"))
        return 6 * (recurrent + self.lm_head.weight.numel())
