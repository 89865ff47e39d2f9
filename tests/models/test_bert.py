"""The BERT encoder: shapes, padding, variants, and logits equal to HF BertForMaskedLM with copied weights."""

import pytest
import torch

from lmforge.models.bert import BERT, BERTConfig
from lmforge.models.convert import to_hf_encoder, to_hf_mlm_head


def test_shapes_and_variants():
    for positions in ("learned", "rope"):
        for mlp in ("gelu", "swiglu"):
            for norm in ("pre", "post"):
                config = BERTConfig(vocab_size=40, max_seq_len=16, n_layers=2, n_heads=2, d_model=16,
                                    positions=positions, mlp=mlp, norm_position=norm)
                model = BERT(config).eval()
                tokens = torch.randint(0, 40, (3, 10))
                assert model.hidden(tokens).shape == (3, 10, 16)
                assert model(tokens).shape == (3, 10, 40)


def test_padding_does_not_change_the_real_tokens():
    torch.manual_seed(0)
    model = BERT(BERTConfig(vocab_size=40, max_seq_len=16, n_layers=2, n_heads=2, d_model=16)).eval()
    tokens = torch.randint(0, 40, (1, 6))
    padded = torch.cat([tokens, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    mask = torch.tensor([[True] * 6 + [False] * 4])
    torch.testing.assert_close(model.hidden(padded, mask)[:, :6], model.hidden(tokens), atol=1e-5, rtol=1e-4)


def test_the_encoder_is_bidirectional():
    torch.manual_seed(0)
    model = BERT(BERTConfig(vocab_size=40, max_seq_len=16, n_layers=1, n_heads=2, d_model=16)).eval()
    tokens = torch.randint(0, 40, (1, 8))
    changed = tokens.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 40
    assert not torch.allclose(model.hidden(tokens)[0, 0], model.hidden(changed)[0, 0])


def copy_into_hf(ours: BERT, hf) -> None:
    """Our parameters into transformers' BertForMaskedLM through models/convert.py (query/key/value are one
    matrix here); everything HF has but position/token-type id buffers must be covered."""
    sd = {**to_hf_encoder(ours, pad_id=0), **to_hf_mlm_head(ours)}
    missing, unexpected = hf.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert all("position_ids" in k or "token_type_ids" in k for k in missing), missing


def test_logits_match_hf_bert_for_masked_lm_with_copied_weights():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = BERTConfig(vocab_size=50, max_seq_len=24, n_layers=2, n_heads=4, d_model=32, norm_position="post",
                        positions="learned", mlp="gelu")
    ours = BERT(config).eval()
    for p in ours.parameters():  # non-trivial biases and norms, so a mismatch cannot hide
        torch.nn.init.normal_(p, std=0.1) if p.dim() == 1 else None
    hf = transformers.BertForMaskedLM(transformers.BertConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
        max_position_embeddings=24, type_vocab_size=2, hidden_act="gelu", layer_norm_eps=1e-12,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)).eval()
    copy_into_hf(ours, hf)
    tokens = torch.randint(0, 50, (2, 24))
    mask = torch.ones(2, 24, dtype=torch.bool)
    mask[1, 18:] = False
    segments = torch.zeros(2, 24, dtype=torch.long)
    segments[:, 12:] = 1
    with torch.no_grad():
        expected = hf(input_ids=tokens, attention_mask=mask.long(), token_type_ids=segments).logits
        got = ours(tokens, mask, segments)
    torch.testing.assert_close(got[0], expected[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got[1, :18], expected[1, :18], atol=1e-4, rtol=1e-4)
