"""The one table of model families: name -> config class, module class, presets and what it can do.
What training does with each family (objective, batches, evaluation) is bound in training/recipes.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from lmforge.models import bert, gpt, rnn


@dataclass(frozen=True)
class ModelSpec:
    name: str
    config_cls: type
    module_cls: type
    presets: dict[str, dict]
    kind: str
    """decoder (generates through new_state/step) or encoder (hidden states for heads; no generation)."""
    summary: str
    fixed: dict = field(default_factory=dict)
    """Config fields the family name decides (e.g. the recurrent cell); not command-line flags."""


MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in [
    ModelSpec("gpt", gpt.GPTConfig, gpt.GPT, gpt.PRESETS, "decoder",
              "Llama-style Transformer decoder (RoPE, RMSNorm, SwiGLU), causal LM"),
    ModelSpec("lstm", rnn.RNNConfig, rnn.RNNLM, rnn.PRESETS, "decoder", "LSTM language model",
              {"cell": "lstm"}),
    ModelSpec("gru", rnn.RNNConfig, rnn.RNNLM, rnn.PRESETS, "decoder", "GRU language model", {"cell": "gru"}),
    ModelSpec("rnn", rnn.RNNConfig, rnn.RNNLM, rnn.PRESETS, "decoder", "Elman (tanh) RNN language model",
              {"cell": "rnn"}),
    ModelSpec("bert", bert.BERTConfig, bert.BERT, bert.PRESETS, "encoder",
              "BERT-style bidirectional encoder, masked LM"),
]}
