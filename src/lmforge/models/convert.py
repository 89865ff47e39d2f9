"""Weight mappings between lmforge models and other layouts. A GPT is Hugging Face's Llama: the same
config (as `LlamaConfig` keyword arguments) and the same tensors under Llama's names, with our fused
projections (qkv, gate_up) split into Llama's separate ones. A BERT with learned positions and a GELU
MLP is HF's Bert (post-norm) or RoBERTa-PreLayerNorm (pre-norm). Plain dicts of tensors, so this
module needs no `transformers`; export (interop/) and the reference tests build the HF models from them."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lmforge.models.bert import BERT, BERTConfig
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


# --- BERT encoders -------------------------------------------------------------------------------
# Post-norm BERT (learned positions, GELU) is HF's Bert; pre-norm is HF's RoBERTa-PreLayerNorm, whose
# positions start after the padding id (real token i reads row pad_id + 1 + i of its table).
HF_ENCODERS = {"post": "bert", "pre": "roberta-prelayernorm"}
ENCODER_PREFIX = {"bert": "bert.", "roberta-prelayernorm": "roberta_prelayernorm."}


def hf_encoder_type(config: BERTConfig) -> str | None:
    """The HF model type that computes what a BERT of `config` computes; None for rotary positions or a
    SwiGLU MLP, which neither layout has."""
    if config.positions != "learned" or config.mlp != "gelu":
        return None
    return HF_ENCODERS[config.norm_position]


def hf_encoder_config(config: BERTConfig, pad_id: int) -> dict:
    """Keyword arguments of `transformers.BertConfig` / `RobertaPreLayerNormConfig` for `config`."""
    model_type = hf_encoder_type(config)
    offset = pad_id + 1 if model_type == "roberta-prelayernorm" else 0
    return dict(vocab_size=config.vocab_size, hidden_size=config.d_model, num_hidden_layers=config.n_layers,
                num_attention_heads=config.n_heads, intermediate_size=config.d_ff,
                max_position_embeddings=config.max_seq_len + offset, type_vocab_size=max(config.n_segments, 1),
                hidden_act="gelu", layer_norm_eps=config.norm_eps, pad_token_id=pad_id,
                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, tie_word_embeddings=True)


def _linear(state: dict, name: str, module: nn.Module) -> None:
    state[name + ".weight"], state[name + ".bias"] = module.weight, module.bias


def _encoder_blocks(bert: BERT, model_type: str) -> dict[str, Tensor]:
    state: dict[str, Tensor] = {}
    for i, block in enumerate(bert.blocks):
        prefix = f"{ENCODER_PREFIX[model_type]}encoder.layer.{i}."
        for j, name in enumerate(("query", "key", "value")):
            state[prefix + f"attention.self.{name}.weight"] = block.attn.qkv.weight.chunk(3)[j]
            state[prefix + f"attention.self.{name}.bias"] = block.attn.qkv.bias.chunk(3)[j]
        pairs = {"attention.output.dense": block.attn.out, "intermediate.dense": block.mlp.up,
                 "output.dense": block.mlp.down}
        if model_type == "bert":    # norms after each sublayer
            pairs |= {"attention.output.LayerNorm": block.attn_norm, "output.LayerNorm": block.mlp_norm}
        else:                       # norms before each sublayer
            pairs |= {"attention.LayerNorm": block.attn_norm, "intermediate.LayerNorm": block.mlp_norm}
        for hf_name, module in pairs.items():
            _linear(state, prefix + hf_name, module)
    return state


def to_hf_encoder(bert: BERT, pad_id: int) -> dict[str, Tensor]:
    """The encoder's weights (no head) under the names of `hf_encoder_type(bert.config)` (detached copies)."""
    c, model_type = bert.config, hf_encoder_type(bert.config)
    if model_type is None:
        raise ValueError("rotary positions and SwiGLU MLPs have no Hugging Face encoder layout")
    prefix = ENCODER_PREFIX[model_type]
    offset = pad_id + 1 if model_type == "roberta-prelayernorm" else 0
    positions = torch.zeros(c.max_seq_len + offset, c.d_model)
    positions[offset:] = bert.position.weight
    segments = bert.segment.weight if bert.segment is not None else torch.zeros(1, c.d_model)
    state = {prefix + "embeddings.word_embeddings.weight": bert.embed.weight,
             prefix + "embeddings.position_embeddings.weight": positions,
             prefix + "embeddings.token_type_embeddings.weight": segments}
    _linear(state, prefix + "embeddings.LayerNorm", bert.embed_norm)
    if bert.norm is not None:
        _linear(state, prefix + "LayerNorm", bert.norm)
    state |= _encoder_blocks(bert, model_type)
    return {name: tensor.detach().clone() for name, tensor in state.items()}


def to_hf_mlm_head(bert: BERT) -> dict[str, Tensor]:
    """The masked-LM head under the names of the model type's *ForMaskedLM."""
    head, model_type = bert.mlm_head, hf_encoder_type(bert.config)
    if model_type == "bert":
        names = {"dense": "cls.predictions.transform.dense", "norm": "cls.predictions.transform.LayerNorm",
                 "decoder": "cls.predictions.decoder", "bias": "cls.predictions.bias"}
    else:
        names = {"dense": "lm_head.dense", "norm": "lm_head.layer_norm", "decoder": "lm_head.decoder",
                 "bias": "lm_head.bias"}
    state: dict[str, Tensor] = {}
    _linear(state, names["dense"], head.dense)
    _linear(state, names["norm"], head.norm)
    _linear(state, names["decoder"], head.decoder)
    state[names["bias"]] = head.decoder.bias
    return {name: tensor.detach().clone() for name, tensor in state.items()}
