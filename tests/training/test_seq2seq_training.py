"""Sequence-to-sequence training: the label-smoothed fused loss against torch's, token-counted batches
that visit every pair once an epoch and split the same way on any world size, word dropout, exact resume
after SIGKILL and a 2-process DDP run equal to one process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from test_loop import ENV, losses, run_cli_subprocess

from conftest import COPY_GRU, COPY_TRAIN, COPY_TRANSFORMER
from lmforge.evaluation.masked import IGNORE
from lmforge.tokenization.pairs import PairSplit
from lmforge.training.objectives import LinearCrossEntropy
from lmforge.training.seq2seq import PairSampler, Seq2SeqConfig, SideIds

IDS = SideIds(bos=0, eos=1, pad=2, mask=3)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_fused_label_smoothed_loss_and_gradients_match_torch(smoothing):
    torch.manual_seed(0)
    hidden = torch.randn(700, 16, dtype=torch.float64, requires_grad=True)   # more rows than one chunk
    weight = torch.randn(50, 16, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 50, (700,))
    targets[::7] = IGNORE
    ours = LinearCrossEntropy.apply(hidden, weight, targets, smoothing)
    ours.backward()
    grads = hidden.grad.clone(), weight.grad.clone()
    hidden.grad, weight.grad = None, None
    theirs = F.cross_entropy(hidden @ weight.t(), targets, ignore_index=IGNORE, label_smoothing=smoothing)
    theirs.backward()
    assert float(ours.detach()) == pytest.approx(float(theirs.detach()), rel=1e-6)
    assert torch.allclose(grads[0], hidden.grad, atol=1e-8) and torch.allclose(grads[1], weight.grad, atol=1e-8)


def split_of(lengths: list[tuple[int, int]]) -> PairSplit:
    rng = np.random.default_rng(0)
    src = [rng.integers(4, 40, n) for n, _ in lengths]
    tgt = [rng.integers(4, 40, m) for _, m in lengths]
    offsets = np.zeros((len(lengths) + 1, 2), dtype=np.int64)
    offsets[1:, 0], offsets[1:, 1] = np.cumsum([n for n, _ in lengths]), np.cumsum([m for _, m in lengths])
    return PairSplit(np.concatenate(src), np.concatenate(tgt), offsets)


def sampler(split, world=1, rank=0, accum=1, **options):
    config = Seq2SeqConfig(**{"batch_tokens": 64, "word_dropout": 0.0, **options})
    return PairSampler(split, config, max_len=30, max_rows=16, grad_accum=accum, rank=rank, world_size=world, seed=5,
                       src_ids=IDS, tgt_ids=IDS, show=False)


def test_batches_stay_within_the_token_budget_and_an_epoch_reads_every_pair_once():
    rng = np.random.default_rng(1)
    split = split_of([(int(a), int(b)) for a, b in rng.integers(1, 25, size=(300, 2))] + [(40, 3)])   # one too long
    s = sampler(split)
    assert s.skipped == 1
    seen = []
    for batch in s.batches:
        src_len, tgt_len = split.lengths()
        width = max(int(max(src_len[batch].max(), tgt_len[batch].max())) + 1, 1)
        assert len(batch) * width <= 64 or len(batch) == 1
        seen += batch.tolist()
    assert sorted(seen) == list(range(300))
    first_epoch = [s._batch_at(i) for i in range(len(s.batches))]
    assert sorted(first_epoch) == list(range(len(s.batches)))
    assert [s._batch_at(i + len(s.batches)) for i in range(len(s.batches))] != first_epoch


def test_two_ranks_read_what_one_process_reads_and_the_loss_scales_add_up():
    rng = np.random.default_rng(2)
    split = split_of([(int(a), int(b)) for a, b in rng.integers(1, 25, size=(200, 2))])
    one = sampler(split, accum=2)
    ranks = [sampler(split, world=2, rank=r) for r in range(2)]
    for step in range(12):
        single = [one.micro_batch(step, m) for m in range(2)]
        split_ranks = [ranks[r].micro_batch(step, 0) for r in range(2)]
        for a, b in zip(single, split_ranks):
            assert torch.equal(a.src, b.src) and torch.equal(a.tgt_out, b.tgt_out) and a.scale == b.scale
        assert sum(b.scale for b in single) == pytest.approx(2.0)   # G x the token mean over the step


def test_word_dropout_masks_real_tokens_only_at_its_rate():
    split = split_of([(20, 20)] * 200)
    batch = sampler(split, word_dropout=0.25, batch_tokens=400).micro_batch(0, 0)
    real_src = batch.src_mask & (batch.src != IDS.eos)
    dropped = (batch.src == IDS.mask) & real_src
    assert 0.18 < float(dropped.sum() / real_src.sum()) < 0.32
    assert torch.all(batch.tgt_in[:, 0] == IDS.bos) and not torch.any((batch.src == IDS.mask) & ~real_src)
    last_real = batch.src.gather(1, (batch.src_mask.sum(1) - 1)[:, None])      # every source still ends in EOS
    assert torch.all(last_real == IDS.eos)


def train_copy(copy_pairs, out, family_args, *extra):
    return ["train", "--data", copy_pairs["data"], "--tokenizer", copy_pairs["tokenizer"], "--out", out,
            *family_args, *COPY_TRAIN, *extra]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["transformer", "gru"])
def test_a_seq2seq_run_resumed_after_sigkill_ends_with_identical_weights(copy_pairs, tmp_path, family):
    model = COPY_TRANSFORMER if family == "transformer" else COPY_GRU
    common = ["--max-steps", "40", "--checkpoint-every", "10", "--seed", "3", "--keep-checkpoints", "10",
              "--word-dropout", "0.1", "--dropout", "0.1", "--log-every", "1"]
    straight = run_cli_subprocess(train_copy(copy_pairs, tmp_path / "straight", model, *common))
    assert straight.wait(timeout=300) == 0, straight.stderr.read().decode()
    killed = run_cli_subprocess(train_copy(copy_pairs, tmp_path / "killed", model, *common))
    deadline = time.time() + 120
    while not (tmp_path / "killed" / "checkpoints" / "step_00000020").exists():
        assert time.time() < deadline and killed.poll() is None, "no checkpoint appeared"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "killed" / "checkpoints" / "step_00000040").exists()
    resumed = run_cli_subprocess(["train", "--resume", tmp_path / "killed"])
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()
    a, b = load_file(str(tmp_path / "straight" / "model.safetensors")), load_file(str(tmp_path / "killed" /
                                                                                   "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert losses(tmp_path / "straight") == losses(tmp_path / "killed")


@pytest.mark.slow
def test_two_process_ddp_seq2seq_matches_one_process(copy_pairs, tmp_path):
    common = ["--max-steps", "6", "--log-every", "1", "--seed", "4", "--warmup-steps", "2", "--checkpoint-every", "6"]
    single = run_cli_subprocess(train_copy(copy_pairs, tmp_path / "single", COPY_TRANSFORMER, *common,
                                           "--grad-accum", "2"))
    assert single.wait(timeout=300) == 0, single.stderr.read().decode()
    args = train_copy(copy_pairs, tmp_path / "ddp", COPY_TRANSFORMER, *common)
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                          "29531", "-m", "lmforge", *map(str, args)], env=ENV, capture_output=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr.decode()[-3000:]
    one, two = losses(tmp_path / "single"), losses(tmp_path / "ddp")
    assert one.keys() == two.keys() and len(one) == 6
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-4, abs=1e-5), step
    a, b = load_file(str(tmp_path / "single" / "model.safetensors")), load_file(str(tmp_path / "ddp" /
                                                                                 "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    records = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert any("val_loss" in r for r in records)
