"""A bidirectional recurrent encoder (BiLSTM or BiGRU) for task heads: each position's state reads the
whole text, left to right and right to left. It is not a language model (a position sees its own
future), so it is trained only with a task head, from scratch or on word vectors (--init-embeddings).

For two-text inputs (a question and a paragraph, a pair) `match_features` adds DrQA's exact-match
feature (Chen et al., 2017) to each token's embedding: whether the same token occurs in the other text,
and which text it belongs to. A recurrent reader of one concatenated sequence otherwise has to carry
every question word across the separator in its state to notice it again in the paragraph."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lmforge.models.rnn import open_forget_gates

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}
MATCH_FEATURES = 2   # occurs in the other text; belongs to the second text


@dataclass
class BiRNNConfig:
    vocab_size: int = 8192
    """Tokens in the vocabulary; must match the tokenizer."""
    cell: str = field(default="lstm", metadata={"cli": False})
    """lstm or gru; chosen by the family name (bilstm, bigru)."""
    d_embed: int = 100
    """Token embedding size (100 or 300 match the usual word vectors)."""
    d_model: int = 256
    """Size of each output state: both directions together, d_model / 2 each."""
    n_layers: int = 1
    """Stacked bidirectional layers."""
    dropout: float = 0.3
    """Dropout on the embeddings, between layers and on the output states."""
    match_features: bool = False
    """Two-text inputs (segments 0 and 1): append to each embedding whether its token occurs in the other
    text and whether it is in the second (on by default for QA and pair tasks)."""

    def __post_init__(self) -> None:
        checks = [
            (self.cell in CELLS, f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}"),
            (self.vocab_size > 0 and self.d_embed > 0, "vocab_size and d_embed must be positive"),
            (self.d_model > 0 and self.d_model % 2 == 0, f"d_model must be positive and even, got {self.d_model}"),
            (self.n_layers > 0, f"n_layers must be positive, got {self.n_layers}"),
            (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


PRESETS: dict[str, dict] = {
    "tiny": dict(d_model=256, n_layers=1),
    "small": dict(d_model=512, n_layers=2),
    "medium": dict(d_model=1024, n_layers=2, d_embed=300),
}


def match_features(tokens: Tensor, mask: Tensor, segments: Tensor | None) -> Tensor:
    """(B, T, 2) floats: 1 where a real token's id also occurs among the other segment's real tokens, and
    1 on the second segment's tokens. Without segments (one text) both are 0."""
    if segments is None:
        return tokens.new_zeros((*tokens.shape, MATCH_FEATURES), dtype=torch.float32)
    second = (segments > 0) & mask                                            # (B, T)
    first = (segments == 0) & mask
    same = tokens[:, :, None] == tokens[:, None, :]                           # (B, T, T)
    other = torch.where(second[:, :, None], first[:, None, :], second[:, None, :])
    occurs = (same & other).any(dim=2) & mask
    return torch.stack([occurs, second], dim=-1).float()


class BiRNNEncoder(nn.Module):
    def __init__(self, config: BiRNNConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_embed)
        self.dropout = nn.Dropout(config.dropout)
        d_input = config.d_embed + (MATCH_FEATURES if config.match_features else 0)
        self.rnn = CELLS[config.cell](d_input, config.d_model // 2, config.n_layers, batch_first=True,
                                      bidirectional=True, dropout=config.dropout if config.n_layers > 1 else 0.0)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        if config.cell == "lstm":   # forget gates start open, as in the language models
            open_forget_gates(self.rnn)

    def hidden(self, tokens: Tensor, mask: Tensor, segments: Tensor | None = None) -> Tensor:
        """States (B, T, d_model) of right-padded rows: packed by length, so the right-to-left pass
        starts at each row's last real token, never at its padding; padded positions are zeros."""
        x = self.dropout(self.embed(tokens))                                  # (B, T, d_embed)
        if self.config.match_features:
            x = torch.cat([x, match_features(tokens, mask, segments)], dim=-1)
        lengths = mask.long().sum(dim=1).clamp_min(1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=tokens.size(1))  # (B, T, d_model)
        return self.dropout(out)

    def num_params(self, embeddings: bool = True) -> int:
        total = sum(p.numel() for p in self.parameters())
        return total if embeddings else total - self.embed.weight.numel()

    def flops_per_token(self, seq_len: int | None = None) -> int:
        return 6 * sum(p.numel() for name, p in self.rnn.named_parameters() if name.startswith("weight"))
