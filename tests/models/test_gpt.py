"""The GPT decoder: shapes, causality, KV cache, config checks, and logits against HF Llama."""

import pytest
import torch

from lmforge.models.convert import from_llama, llama_config, to_llama
from lmforge.models.gpt import GPT, PRESETS, GPTConfig

SMALL = GPTConfig(vocab_size=97, max_seq_len=40, n_layers=2, n_heads=4, n_kv_heads=2, d_model=32)


def model(config=SMALL, seed=0):
    torch.manual_seed(seed)
    return GPT(config).eval()


def test_shapes_and_parameter_count():
    gpt = model()
    tokens = torch.randint(0, 97, (3, 17))
    assert gpt(tokens).shape == (3, 17, 97)
    assert gpt.num_params() == sum(p.numel() for p in gpt.parameters())
    assert gpt.flops_per_token(40) > 6 * gpt.num_params(embeddings=False)


def test_future_tokens_do_not_change_past_logits():
    gpt = model()
    tokens = torch.randint(0, 97, (1, 20))
    changed = tokens.clone()
    changed[0, 12:] = (changed[0, 12:] + 1) % 97
    torch.testing.assert_close(gpt(tokens)[0, :12], gpt(changed)[0, :12])
    assert not torch.allclose(gpt(tokens)[0, 12:], gpt(changed)[0, 12:])


def test_kv_cache_matches_full_forward_in_any_chunking():
    gpt = model()
    tokens = torch.randint(0, 97, (2, 24))
    full = gpt(tokens)
    cache = gpt.new_state(2, 40)
    pieces = [gpt(tokens[:, :10], cache), gpt(tokens[:, 10:11], cache), gpt(tokens[:, 11:24], cache)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.pos == 24


def test_tied_embeddings_share_one_tensor():
    config = dict(vocab_size=50, max_seq_len=8, n_layers=1, n_heads=2, d_model=16)
    tied, untied = model(GPTConfig(**config, tie_embeddings=True)), model(GPTConfig(**config))
    assert tied.lm_head.weight is tied.embed.weight
    # the head multiplies by the shared matrix either way: same FLOPs, fewer parameters
    assert tied.flops_per_token() == untied.flops_per_token()
    assert tied.num_params() == untied.num_params() - 50 * 16


@pytest.mark.parametrize("changes, flag", [
    (dict(n_heads=3), "--n-heads"), (dict(n_kv_heads=3), "--n-kv-heads"), (dict(vocab_size=0), "--vocab-size"),
    (dict(dropout=1.5), "--dropout"),
])
def test_config_values_out_of_range(changes, flag):
    with pytest.raises(ValueError, match=flag):
        GPTConfig(**{**dict(vocab_size=10, d_model=32, n_heads=4), **changes})


def test_presets_build():
    for name, preset in PRESETS.items():
        config = GPTConfig(vocab_size=100, **preset)
        assert config.d_model % config.n_heads == 0, name


def test_context_longer_than_max_seq_len_is_refused():
    with pytest.raises(ValueError, match="max_seq_len"):
        model()(torch.zeros(1, 41, dtype=torch.long))


def hf_llama_from(gpt: GPT):
    """An independent implementation: transformers' Llama with our weights copied in (models/convert.py)."""
    transformers = pytest.importorskip("transformers")
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**llama_config(gpt.config))).eval()
    hf.load_state_dict(to_llama(gpt))
    return hf


def test_the_llama_mapping_round_trips():
    gpt = model()
    again = GPT(SMALL)
    again.load_state_dict(from_llama(to_llama(gpt), SMALL))
    for name, tensor in gpt.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name


def test_logits_match_hugging_face_llama():
    gpt = model()
    with torch.no_grad():  # non-trivial norm gains, so a wrong norm wiring would show
        for block in gpt.blocks:
            block.attn_norm.weight.uniform_(0.5, 1.5)
    hf = hf_llama_from(gpt)
    tokens = torch.randint(0, 97, (2, 30))
    with torch.no_grad():
        torch.testing.assert_close(gpt(tokens), hf(tokens).logits, atol=1e-4, rtol=1e-4)
