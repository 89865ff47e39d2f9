"""The layer summary: every family, shapes from a real forward pass, parameters adding up."""

import pytest

from lmforge.models.registry import MODELS
from lmforge.models.summary import example_inputs, layer_rows


@pytest.mark.parametrize("family", sorted(MODELS))
def test_rows_cover_the_model_in_execution_order(family):
    spec = MODELS[family]
    small = {"gpt": dict(n_layers=2, n_heads=2, d_model=16, max_seq_len=8),
             "bert": dict(n_layers=2, n_heads=2, d_model=16, max_seq_len=8),
             "transformer": dict(n_heads=2, d_model=16, enc_layers=2, dec_layers=2),
             "seq2seq-gru": dict(d_embed=16, d_hidden=16),
             "seq2seq-lstm": dict(d_embed=16, d_hidden=16)}.get(family, dict(d_model=16))
    vocab = dict(src_vocab_size=30, tgt_vocab_size=30) if spec.kind == "seq2seq" else dict(vocab_size=30)
    model = spec.module_cls(spec.config_cls(**vocab, **small, **spec.fixed))
    rows = layer_rows(model, example_inputs(model, 8))
    top = [r for r in rows if r.depth == 0]
    assert top[0].kind == "Embedding" and top[0].output_shape == (1, 8, 16)
    # every parameter belongs to one top-level row (a BERT's position table once went missing: it was indexed,
    # not called, so no hook saw it)
    assert sum(r.params for r in top) == sum(p.numel() for p in model.parameters())
    if family in ("gpt", "bert"):
        assert [r.name for r in top if r.name.startswith("blocks.")] == ["blocks.0", "blocks.1"]
    if family == "transformer":
        assert [r.name for r in top if r.name.startswith("decoder.")] == ["decoder.0", "decoder.1"]
    assert top[-1].name in ("lm_head", "mlm_head") and top[-1].output_shape == (1, 8, 30)
