"""The fused head + cross-entropy against the plain head and F.cross_entropy (reference)."""

import torch
import torch.nn.functional as F

from lmforge.evaluation.masked import IGNORE
from lmforge.models.gpt import GPT, GPTConfig
from lmforge.training import objectives
from lmforge.training.batches import LMBatch
from lmforge.training.objectives import LinearCrossEntropy


def test_fused_loss_and_gradients_match_the_unfused_reference(monkeypatch):
    monkeypatch.setattr(objectives, "HEAD_CHUNK", 7)  # several chunks, the last one ragged
    torch.manual_seed(0)
    hidden = torch.randn(30, 16, requires_grad=True)
    weight = torch.randn(50, 16, requires_grad=True)
    targets = torch.randint(0, 50, (30,))
    targets[[3, 17]] = IGNORE
    fused = LinearCrossEntropy.apply(hidden, weight, targets) * 2.5
    fused.backward()
    got = (fused.item(), hidden.grad.clone(), weight.grad.clone())
    hidden.grad = weight.grad = None
    reference = F.cross_entropy(hidden @ weight.t(), targets, ignore_index=IGNORE) * 2.5
    reference.backward()
    assert abs(got[0] - reference.item()) < 1e-5
    torch.testing.assert_close(got[1], hidden.grad, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(got[2], weight.grad, atol=1e-6, rtol=1e-5)


def test_causal_lm_objective_equals_plain_logits_loss():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=40, max_seq_len=16, n_layers=1, n_heads=2, d_model=16, tie_embeddings=True))
    tokens, targets = torch.randint(0, 40, (3, 16)), torch.randint(0, 40, (3, 16))
    loss = objectives.TrainingView(model, objectives.causal_lm)(LMBatch(tokens, targets))
    loss.backward()
    fused_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    plain = F.cross_entropy(model(tokens).flatten(0, 1), targets.flatten())
    plain.backward()
    assert abs(loss.item() - plain.item()) < 1e-5
    for a, p in zip(fused_grads, model.parameters()):
        torch.testing.assert_close(a, p.grad, atol=1e-6, rtol=1e-4)


def test_muon_takes_hidden_linear_matrices_by_module_type():
    from lmforge.models.bert import BERT, BERTConfig
    from lmforge.training.optim import muon_matrices

    model = GPT(GPTConfig(vocab_size=40, max_seq_len=16, n_layers=2, n_heads=2, d_model=16))
    chosen = {id(p) for p in muon_matrices(model)}
    expected = {id(p) for n, p in model.named_parameters() if n.startswith("blocks.") and p.dim() == 2}
    assert chosen == expected  # not the embedding, not the head, not the norms
    bert = BERT(BERTConfig(vocab_size=40, max_seq_len=16, n_layers=1, n_heads=2, d_model=16))
    names = {n for n, p in bert.named_parameters() if id(p) in {id(q) for q in muon_matrices(bert)}}
    assert "mlm_head.dense.weight" in names and "mlm_head.decoder.weight" not in names
    assert not any("embed" in n or "position" in n for n in names)
