"""Encoder-decoder models: attention by hand and never on padding, decoding through the protocol equal to
teacher forcing, without the cache, per row and in a batch; beam 1 is greedy."""

from __future__ import annotations

import math

import pytest
import torch

from lmforge.inference.beam import beam_search
from lmforge.inference.decoding import generate_batch
from lmforge.inference.sampling import SamplingConfig
from lmforge.inference.translation import encode_sources
from lmforge.models.layers import EncoderOutput
from lmforge.models.seq2seq import Attention, Seq2SeqRNN, Seq2SeqRNNConfig
from lmforge.models.transformer import Transformer, TransformerConfig

PAD, BOS, EOS = 2, 0, 1
SOURCES = [[3, 4, 5, 6, EOS], [7, 8, EOS], [9, 10, 11, 12, 13, 14, EOS]]
# a Transformer's second field is its norm position (post-norm also scales its embeddings)
VARIANTS = [("transformer", "pre", None), ("transformer", "post", None), ("gru", "none", False),
            ("gru", "bahdanau", False), ("lstm", "bahdanau", False), ("gru", "luong-dot", True),
            ("lstm", "luong-general", True), ("gru", "luong-general", False)]


def build(family, attention, feeding):
    torch.manual_seed(0)
    if family == "transformer":
        model = Transformer(TransformerConfig(src_vocab_size=20, tgt_vocab_size=20, d_model=32, n_heads=2, enc_layers=2,
                                              dec_layers=2, dropout=0.0, attn_dropout=0.0, max_seq_len=40,
                                              norm_position=attention or "pre", scale_embeddings=attention == "post"))
    else:
        model = Seq2SeqRNN(Seq2SeqRNNConfig(src_vocab_size=20, tgt_vocab_size=20, cell=family, attention=attention,
                                            input_feeding=feeding, d_embed=16, d_hidden=24, enc_layers=2, dec_layers=2,
                                            dropout=0.0))
        for p in model.parameters():   # larger weights than the init, so differences would show
            p.data.normal_(0, 0.5)
    return model.eval()


def padded(sources):
    src = torch.full((len(sources), max(map(len, sources))), PAD)
    for row, ids in enumerate(sources):
        src[row, :len(ids)] = torch.tensor(ids)
    return src, src != PAD


def test_additive_attention_matches_a_hand_computed_example():
    attention = Attention(Seq2SeqRNNConfig(d_hidden=2, d_attention=2, attention="bahdanau"))
    with torch.no_grad():
        attention.key.weight.copy_(torch.eye(2))
        attention.query.weight.copy_(torch.eye(2))
        attention.query.bias.zero_()
        attention.v.weight.copy_(torch.tensor([[1.0, 1.0]]))
    states = torch.tensor([[[0.0, 1.0], [1.0, 1.0], [5.0, -5.0]]])           # the third is padding
    memory = EncoderOutput(states, torch.tensor([[True, True, False]]))
    context, weights = attention(torch.tensor([[[1.0, 0.0]]]), attention.keys(states), memory)
    # score_j = v . tanh(q + s_j): tanh(1) + tanh(1) and tanh(2) + tanh(1); softmax over the two real ones
    a, b = 2 * math.tanh(1), math.tanh(2) + math.tanh(1)
    w1, w2 = math.exp(a) / (math.exp(a) + math.exp(b)), math.exp(b) / (math.exp(a) + math.exp(b))
    assert weights[0, 0].tolist() == pytest.approx([w1, w2, 0.0], abs=1e-6)
    assert context[0, 0].tolist() == pytest.approx([w2, w1 + w2], abs=1e-6)


@pytest.mark.parametrize("family,attention,feeding", [v for v in VARIANTS if v[1] != "none"])
def test_attention_weights_sum_to_one_over_real_tokens_and_never_touch_padding(family, attention, feeding):
    model = build(family, attention, feeding)
    src, mask = padded(SOURCES)
    tgt = torch.tensor([[BOS, 5, 6, 7], [BOS, 9, 9, 3], [BOS, 4, 4, 4]])
    with torch.no_grad():
        weights = model.attention_maps(src, mask, tgt)                        # (L, B, H, T, S)
        assert weights.shape[1] == 3 and weights.shape[3:] == (4, src.size(1))
        assert torch.allclose(weights.sum(-1), torch.ones(()), atol=1e-5)
        assert torch.all(weights.masked_select(~mask[None, :, None, None, :].expand_as(weights)) == 0)
        # a padded row's logits are those of its sentence read alone
        alone = model(torch.tensor([SOURCES[1]]), torch.ones(1, 3, dtype=torch.bool), tgt[1:2])
        assert torch.allclose(model(src, mask, tgt)[1:2], alone, atol=1e-5)


@pytest.mark.parametrize("family,attention,feeding", VARIANTS)
def test_step_by_step_decoding_through_the_cache_equals_teacher_forcing(family, attention, feeding):
    model = build(family, attention, feeding)
    src, mask = padded(SOURCES)
    tgt = torch.tensor([[BOS, 5, 6, 7, 8], [BOS, 9, 9, 3, 3], [BOS, 4, 4, 4, 4]])
    with torch.no_grad():
        full = model(src, mask, tgt)
        state = model.new_state(3, 8, memory=model.encode(src, mask))
        steps = []
        for t in range(tgt.size(1)):
            logits, state = model.step(tgt[:, t:t + 1], torch.full((3, 1), t), state)
            steps.append(logits)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def greedy(model, sources, limits):
    memory = encode_sources(model, sources, PAD, "cpu")
    found = generate_batch(model, [[BOS]] * len(sources), max_new_tokens=limits, sampling=SamplingConfig(temperature=0),
                           seeds=[0] * len(sources), eos_id=EOS, decode=lambda ids: " ".join(map(str, ids)),
                           memory=memory)
    return [g.token_ids for g in found]


def beams(model, sources, limits, k, n_best=1):
    found = beam_search(model, [[BOS]] * len(sources), beams=k, max_new_tokens=limits, eos_id=EOS, n_best=n_best,
                        decode=lambda ids: " ".join(map(str, ids)), memory=encode_sources(model, sources, PAD, "cpu"))
    return [[(h.token_ids, h.score) for h in hyps] for hyps in found]


@pytest.mark.parametrize("family,attention,feeding", VARIANTS)
def test_beam_one_is_greedy_and_a_batch_decodes_as_each_sentence_alone(family, attention, feeding):
    model = build(family, attention, feeding)
    limits = [8, 6, 12]
    batched = greedy(model, SOURCES, limits)
    assert [len(ids) <= limit for ids, limit in zip(batched, limits)] == [True] * 3
    assert batched == [greedy(model, [s], [n])[0] for s, n in zip(SOURCES, limits)]
    assert [hyps[0][0] for hyps in beams(model, SOURCES, limits, 1)] == batched
    four = beams(model, SOURCES, limits, 4, n_best=3)
    alone = [beams(model, [s], [n], 4, n_best=3)[0] for s, n in zip(SOURCES, limits)]
    assert [[ids for ids, _ in hyps] for hyps in four] == [[ids for ids, _ in hyps] for hyps in alone]
    assert [s for hyps in four for _, s in hyps] == pytest.approx([s for hyps in alone for _, s in hyps], abs=1e-4)
    assert all(h[0][1] >= h[-1][1] for h in four)


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_transformer_decoding_without_the_cache_is_the_same(norm):
    model = build("transformer", norm, None)
    src, mask = padded(SOURCES)
    tokens = torch.full((3, 1), BOS)
    with torch.no_grad():
        for _ in range(8):   # each step re-reads the whole target so far, no cache
            tokens = torch.cat([tokens, model(src, mask, tokens)[:, -1].argmax(-1, keepdim=True)], dim=1)
    cached = greedy(model, SOURCES, [8] * 3)
    for row, ids in enumerate(cached):
        assert tokens[row, 1:1 + len(ids)].tolist() == ids


def test_post_norm_normalises_each_sum_and_has_no_final_norm():
    pre, post = build("transformer", "pre", None), build("transformer", "post", None)
    assert isinstance(post.enc_norm, torch.nn.Identity) and isinstance(post.dec_norm, torch.nn.Identity)
    assert len(pre.state_dict()) == len(post.state_dict()) + 2
    src, mask = padded(SOURCES)
    with torch.no_grad():
        states = post.encode(src, mask).states                # each block ends in an RMSNorm of weight 1
        block = post.encoder[0]
        x = post.src_embed(src) * 32 ** 0.5
        by_hand = block.attn_norm(x + block.attn(x, post.rope(0, src.size(1)), mask[:, None, None, :], causal=False))
        assert torch.allclose(block(x, post.rope(0, src.size(1)), mask[:, None, None, :]),
                              block.mlp_norm(by_hand + block.mlp(by_hand)), atol=1e-6)
    assert torch.allclose(states.pow(2).mean(-1), torch.ones(states.shape[:2]), atol=1e-3)
    with pytest.raises(ValueError, match="--norm-position"):
        TransformerConfig(norm_position="sandwich")


def test_embeddings_shared_and_tied_as_configured():
    model = build("transformer", None, None)
    assert model.src_embed.weight is model.tgt_embed.weight is model.lm_head.weight
    separate = Transformer(TransformerConfig(src_vocab_size=20, tgt_vocab_size=30, share_embeddings=False, d_model=32,
                                             n_heads=2, enc_layers=1, dec_layers=1))
    assert separate.src_embed.weight is not separate.tgt_embed.weight
    assert separate.lm_head.weight is separate.tgt_embed.weight and separate.lm_head.out_features == 30
    with pytest.raises(ValueError, match="share-embeddings"):
        TransformerConfig(src_vocab_size=20, tgt_vocab_size=30)


@pytest.mark.parametrize("family,attention,feeding", [("transformer", "pre", None), ("gru", "bahdanau", False)])
def test_a_beam_step_leaves_what_is_read_from_the_source_in_place(family, attention, feeding):
    model = build(family, attention, feeding)
    src, mask = padded(SOURCES)
    start = model.new_state(3, 8, memory=model.encode(src, mask))

    def source_tensors(s):
        return [k for k, _ in s.cross] if family == "transformer" else [s.memory.states, s.keys]

    state = model.reorder(start, torch.tensor([0, 0, 1, 1, 2, 2]))      # two beams per sentence: held once
    assert state.group == 2 and all(a is b for a, b in zip(source_tensors(state), source_tensors(start)))
    stepped = model.reorder(state, torch.tensor([1, 1, 3, 2, 4, 4]))   # beams move within their sentence
    assert stepped.group == 2 and all(a is b for a, b in zip(source_tensors(stepped), source_tensors(state)))
    dropped = model.reorder(stepped, torch.tensor([0, 1, 4, 5]))        # the second sentence is done
    assert dropped.group == 2
    for kept, before in zip(source_tensors(dropped), source_tensors(stepped)):
        assert kept.size(0) == 2 and torch.equal(kept, before[[0, 2]])
    shuffled = model.reorder(dropped, torch.tensor([3, 0, 1]))          # out of source order: a copy per row
    assert shuffled.group == 1
    for kept, before in zip(source_tensors(shuffled), source_tensors(dropped)):
        assert torch.equal(kept, before[[1, 0, 0]])
