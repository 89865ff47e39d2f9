"""The layer summary: every family, shapes from a real forward pass, parameters adding up."""

import pytest
import torch

from lmforge.models.registry import MODELS
from lmforge.models.summary import layer_rows


@pytest.mark.parametrize("family", sorted(MODELS))
def test_rows_cover_the_model_in_execution_order(family):
    spec = MODELS[family]
    small = {"gpt": dict(n_layers=2, n_heads=2, d_model=16, max_seq_len=8),
             "bert": dict(n_layers=2, n_heads=2, d_model=16, max_seq_len=8)}.get(family, dict(d_model=16))
    model = spec.module_cls(spec.config_cls(vocab_size=30, **small, **spec.fixed))
    rows = layer_rows(model, torch.zeros((1, 8), dtype=torch.long))
    top = [r for r in rows if r.depth == 0]
    assert top[0].kind == "Embedding" and top[0].output_shape == (1, 8, 16)
    # every parameter belongs to one top-level row (a BERT's position table once went missing: it was indexed,
    # not called, so no hook saw it)
    assert sum(r.params for r in top) == sum(p.numel() for p in model.parameters())
    if family in ("gpt", "bert"):
        assert [r.name for r in top if r.name.startswith("blocks.")] == ["blocks.0", "blocks.1"]
    assert top[-1].name in ("lm_head", "mlm_head") and top[-1].output_shape == (1, 8, 30)
