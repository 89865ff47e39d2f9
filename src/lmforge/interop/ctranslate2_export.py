"""`lmforge export --format ctranslate2`: the translation Transformer as a CTranslate2 model folder, built
through CTranslate2's own model specification (pre- or post-norm, RMSNorm, SwiGLU, rotary self-attention rotating
half against half, as ours) and its converter's validation and saving, then checked by translating with
`ctranslate2.Translator`: greedy output must equal lmforge's, token for token.

Tokens travel as our tokenizer's token strings: a source is its tokens then `<|eos|>`, and decoding starts
from `<|bos|>` (as `lmforge translate` frames them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmforge.errors import InputError
from lmforge.interop import parity
from lmforge.tokenization.specials import BOS, EOS, UNK

SAMPLES = ["Remove the file", "Could not open %s", "The quick brown fox jumps over the lazy dog.",
           "Save changes before closing?", "Unknown error"]


def _array(tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()


def _block_weights(layer, block, d_model: int, cross: bool) -> None:
    layer.self_attention.layer_norm.gamma = _array(block.attn_norm.weight)
    layer.self_attention.linear[0].weight = _array(block.attn.qkv.weight)
    layer.self_attention.linear[1].weight = _array(block.attn.out.weight)
    if cross:
        layer.attention.layer_norm.gamma = _array(block.cross_norm.weight)
        layer.attention.linear[0].weight = _array(block.cross.q.weight)
        layer.attention.linear[1].weight = _array(block.cross.kv.weight)   # keys rows, then values rows
        layer.attention.linear[2].weight = _array(block.cross.out.weight)
    gate, up = block.mlp.gate_up.weight.chunk(2)
    layer.ffn.layer_norm.gamma = _array(block.mlp_norm.weight)
    layer.ffn.linear_0.weight = _array(gate)          # the activated half of SwiGLU
    layer.ffn.linear_0_noact.weight = _array(up)
    layer.ffn.linear_1.weight = _array(block.mlp.down.weight)


def _tokens(tokenizer, size: int) -> list[str]:
    by_id = {index: token for token, index in tokenizer.hf.get_vocab(with_added_tokens=True).items()}
    return [by_id.get(index, f"<|unused{index}|>") for index in range(size)]


def transformer_spec(loaded):
    """The CTranslate2 specification of a loaded translation Transformer, weights and vocabularies set."""
    from ctranslate2.specs import common_spec, transformer_spec

    model, c = loaded.model, loaded.model.config
    pre_norm = c.norm_position == "pre"
    layout = dict(pre_norm=pre_norm, activation=common_spec.Activation.SWISH, ffn_glu=True, rms_norm=True,
                  rotary_dim=c.head_dim, rotary_interleave=False, rotary_base=c.rope_theta)
    encoder = transformer_spec.TransformerEncoderSpec(c.enc_layers, c.n_heads, **layout)
    decoder = transformer_spec.TransformerDecoderSpec(c.dec_layers, c.n_heads, **layout)
    spec = transformer_spec.TransformerSpec(encoder, decoder)
    encoder.scale_embeddings = decoder.scale_embeddings = c.scale_embeddings
    encoder.embeddings[0].weight = _array(model.src_embed.weight)
    decoder.embeddings.weight = _array(model.tgt_embed.weight)
    for layer, block in zip(encoder.layer, model.encoder):
        _block_weights(layer, block, c.d_model, cross=False)
    for layer, block in zip(decoder.layer, model.decoder):
        _block_weights(layer, block, c.d_model, cross=True)
    if pre_norm:   # post-norm stacks have no final norm
        encoder.layer_norm.gamma = _array(model.enc_norm.weight)
        decoder.layer_norm.gamma = _array(model.dec_norm.weight)
    decoder.projection.weight = _array(model.lm_head.weight)
    spec.config.layer_norm_epsilon = c.norm_eps
    spec.config.add_source_bos, spec.config.add_source_eos = False, False
    spec.config.decoder_start_token, spec.config.bos_token, spec.config.eos_token = BOS, BOS, EOS
    spec.config.unk_token = UNK
    spec.register_source_vocabulary(_tokens(loaded.src, c.src_vocab_size))
    spec.register_target_vocabulary(_tokens(loaded.tgt, c.tgt_vocab_size))
    return spec


def write_ctranslate2(loaded, out: Path) -> None:
    from ctranslate2.converters.converter import Converter

    class LmforgeConverter(Converter):
        def _load(self):
            return transformer_spec(loaded)

    LmforgeConverter().convert(str(out), force=True)


def _our_greedy(loaded, sources: list[list[int]]) -> tuple[list[list[int]], list[int]]:
    """Greedy translations (ids, EOS dropped) and each source's length limit, as `translate --beam 1`."""
    from lmforge.inference.translation import DecodeConfig, Translator

    translator, config = Translator(loaded), DecodeConfig(beam=1, no_repeat_ngram=0)
    rows = translator._batch(sources, config, list(range(len(sources))))
    eos = loaded.tgt.eos_id
    return [[i for i in row["ids"] if i != eos] for row in rows], translator.limits(sources, config)


def _validation_sources(loaded, count: int = 16) -> list[list[int]]:
    """The first sources of the run's validation pairs (in-domain sentences), framed as `translate` frames
    them; none when the pair shards are not where the run says."""
    from lmforge.tokenization.pairs import read_pair_shards

    try:
        shards = read_pair_shards(loaded.run.contract.shards)
        split = shards.split("valid" if shards.has("valid") else "train")
    except (InputError, OSError, KeyError, ValueError):   # moved or deleted shards: the samples still check it
        return []
    eos, limit = loaded.src.eos_id, loaded.model.config.max_seq_len
    sources = []
    for i in range(min(count, len(split))):
        ids = [int(t) for t in split.pair(i)[0] if int(t) != eos][:limit - 1]
        sources.append([*ids, eos])
    return sources


def export_ctranslate2(loaded, out: Path, verify: bool, name: str) -> dict:
    write_ctranslate2(loaded, out)
    norm = loaded.model.config.norm_position
    summary = {"architecture": f"CTranslate2 TransformerSpec ({norm}-norm, RMSNorm, SwiGLU, rotary)",
               "files": sorted(p.name for p in Path(out).iterdir())}
    if not verify:
        return summary | {"verified": {"by": None, "passed": None, "skipped": "--no-verify"}}
    try:
        import ctranslate2
    except ImportError:
        return summary | {"verified": parity.skipped("ctranslate2")}
    from lmforge.inference.translation import source_ids

    sources, _ = source_ids(loaded.src, SAMPLES, loaded.model.config.max_seq_len)
    sources += _validation_sources(loaded)
    ours, limits = _our_greedy(loaded, sources)
    src_tokens = _tokens(loaded.src, loaded.model.config.src_vocab_size)
    tgt_index = {token: i for i, token in enumerate(_tokens(loaded.tgt, loaded.model.config.tgt_vocab_size))}
    translator = ctranslate2.Translator(str(out), device="cpu", inter_threads=1, intra_threads=2)
    theirs = []
    for ids, limit in zip(sources, limits):   # one at a time: each source has its own length limit
        [result] = translator.translate_batch([[src_tokens[i] for i in ids]], beam_size=1,
                                              max_decoding_length=limit, num_hypotheses=1)
        theirs.append([tgt_index[t] for t in result.hypotheses[0]])
    equal = sum(a == b for a, b in zip(ours, theirs))
    return summary | {"verified": {"by": f"ctranslate2 {ctranslate2.__version__}", "passed": equal == len(ours),
                                   "greedy_translations_equal": f"{equal}/{len(ours)}",
                                   "target_tokens": sum(map(len, ours))}}
