"""Weight mappings between lmforge models and other layouts. A GPT is Hugging Face's Llama: the same
config (as `LlamaConfig` keyword arguments) and the same tensors under Llama's names, with our fused
projections (qkv, gate_up) split into Llama's separate ones. Plain dicts of tensors, so this module
needs no `transformers`; export and the reference tests build the Llama model from them."""

from __future__ import annotations

import torch
from torch import Tensor

from lmforge.models.gpt import GPT, GPTConfig


def llama_config(config: GPTConfig) -> dict:
    """`transformers.LlamaConfig(**llama_config(c))` describes a GPT of config `c`."""
    return dict(vocab_size=config.vocab_size, hidden_size=config.d_model, intermediate_size=config.d_ff,
                num_hidden_layers=config.n_layers, num_attention_heads=config.n_heads,
                num_key_value_heads=config.n_kv_heads, max_position_embeddings=config.max_seq_len,
                rms_norm_eps=config.norm_eps, rope_theta=config.rope_theta,
                tie_word_embeddings=config.tie_embeddings, attention_bias=False, mlp_bias=False)


def _block_names(i: int) -> dict[str, str]:
    prefix = f"model.layers.{i}."
    return {"attn_norm": prefix + "input_layernorm.weight", "mlp_norm": prefix + "post_attention_layernorm.weight",
            "out": prefix + "self_attn.o_proj.weight", "down": prefix + "mlp.down_proj.weight",
            "q": prefix + "self_attn.q_proj.weight", "k": prefix + "self_attn.k_proj.weight",
            "v": prefix + "self_attn.v_proj.weight", "gate": prefix + "mlp.gate_proj.weight",
            "up": prefix + "mlp.up_proj.weight"}


def to_llama(gpt: GPT) -> dict[str, Tensor]:
    """The GPT's weights under Llama's names (detached copies)."""
    c = gpt.config
    q, kv = c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim
    state = {"model.embed_tokens.weight": gpt.embed.weight, "model.norm.weight": gpt.norm.weight,
             "lm_head.weight": gpt.lm_head.weight}
    for i, block in enumerate(gpt.blocks):
        names = _block_names(i)
        wq, wk, wv = block.attn.qkv.weight.split([q, kv, kv])
        gate, up = block.mlp.gate_up.weight.chunk(2)
        state.update({names["q"]: wq, names["k"]: wk, names["v"]: wv, names["out"]: block.attn.out.weight,
                      names["gate"]: gate, names["up"]: up, names["down"]: block.mlp.down.weight,
                      names["attn_norm"]: block.attn_norm.weight, names["mlp_norm"]: block.mlp_norm.weight})
    return {name: tensor.detach().clone() for name, tensor in state.items()}


def from_llama(state: dict[str, Tensor], config: GPTConfig) -> dict[str, Tensor]:
    """A Llama state dict as the state dict of a GPT of `config` (a tied head may be absent)."""
    ours = {"embed.weight": state["model.embed_tokens.weight"], "norm.weight": state["model.norm.weight"],
            "lm_head.weight": state.get("lm_head.weight", state["model.embed_tokens.weight"])}
    for i in range(config.n_layers):
        names = _block_names(i)
        prefix = f"blocks.{i}."
        ours.update({prefix + "attn.qkv.weight": torch.cat([state[names["q"]], state[names["k"]], state[names["v"]]]),
                     prefix + "attn.out.weight": state[names["out"]],
                     prefix + "mlp.gate_up.weight": torch.cat([state[names["gate"]], state[names["up"]]]),
                     prefix + "mlp.down.weight": state[names["down"]],
                     prefix + "attn_norm.weight": state[names["attn_norm"]],
                     prefix + "mlp_norm.weight": state[names["mlp_norm"]]})
    return ours
