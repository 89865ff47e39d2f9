"""The one table of model families: name -> config class, module class, presets and what it can do.
What training does with each family (objective, batches, evaluation) is bound in training/recipes.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from lmforge.models import bag_of_ngrams, bert, birnn, gpt, rnn, seq2seq, transformer


@dataclass(frozen=True)
class ModelSpec:
    name: str
    config_cls: type
    module_cls: type
    presets: dict[str, dict]
    kind: str
    """decoder (generates through new_state/step), encoder (hidden states for heads; no generation),
    seq2seq (an encoder-decoder: encode(src) once, then a decoder over that memory) or task (a task body
    trained only with a head, by `finetune --model`; no pretraining objective)."""
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
    ModelSpec("seq2seq-gru", seq2seq.Seq2SeqRNNConfig, seq2seq.Seq2SeqRNN, seq2seq.PRESETS, "seq2seq",
              "GRU encoder-decoder with Bahdanau or Luong attention (or none), translation", {"cell": "gru"}),
    ModelSpec("seq2seq-lstm", seq2seq.Seq2SeqRNNConfig, seq2seq.Seq2SeqRNN, seq2seq.PRESETS, "seq2seq",
              "LSTM encoder-decoder with Bahdanau or Luong attention (or none), translation", {"cell": "lstm"}),
    ModelSpec("transformer", transformer.TransformerConfig, transformer.Transformer, transformer.PRESETS, "seq2seq",
              "Transformer encoder-decoder (pre-norm, RoPE, SwiGLU), translation"),
]}

# Task bodies: no language-model objective of their own, so `train` does not offer them; `finetune
# --model NAME` trains them from scratch with a head (on word vectors with --init-embeddings).
TASK_MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in [
    ModelSpec("bilstm", birnn.BiRNNConfig, birnn.BiRNNEncoder, birnn.PRESETS, "task",
              "bidirectional LSTM encoder (max pooling for texts, a state per token for tags)", {"cell": "lstm"}),
    ModelSpec("bigru", birnn.BiRNNConfig, birnn.BiRNNEncoder, birnn.PRESETS, "task",
              "bidirectional GRU encoder", {"cell": "gru"}),
    ModelSpec("fasttext", bag_of_ngrams.BagConfig, bag_of_ngrams.BagOfNgrams, bag_of_ngrams.PRESETS, "task",
              "fastText-style bag of token and hashed n-gram embeddings, averaged, linear classifier"),
]}
ALL_MODELS: dict[str, ModelSpec] = {**MODELS, **TASK_MODELS}
