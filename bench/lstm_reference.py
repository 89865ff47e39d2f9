"""LSTM language model: `lmforge train --model lstm --preset tiny` against the plain PyTorch loop of
PyTorch's own word_language_model example (re-implemented here from its description: the same
nn.LSTM shape, tied embeddings, batchified streams, truncated BPTT with repackaged hidden states,
SGD lr 20 with clipping 0.25 and LR / 4 when validation stalls), on the same character shards,
for the same wall-clock budget. Reports training tokens/s and validation loss over the whole val split.
    python bench/lstm_reference.py [--budget 60]     (run bench/cli_defaults.py first: it makes the shards)
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import machine
from torch import nn

WORK = Path("/tmp/lmforge-bench-cli")


class RNNModel(nn.Module):
    """The example's model: embedding -> dropout -> LSTM -> dropout -> linear decoder (tied)."""

    def __init__(self, ntoken: int, ninp: int, nhid: int, nlayers: int, dropout: float):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        self.decoder.weight = self.encoder.weight
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, x, hidden):
        output, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
        return self.decoder(self.drop(output)), hidden


def batchify(data: np.ndarray, batch: int) -> torch.Tensor:
    n = len(data) // batch
    return torch.from_numpy(data[:n * batch].astype(np.int64)).view(batch, n).t().contiguous()  # (n, batch)


@torch.no_grad()
def evaluate(model, source: torch.Tensor, bptt: int) -> float:
    model.eval()
    hidden, total, count = None, 0.0, 0
    for i in range(0, source.size(0) - 1, bptt):
        x, y = source[i:i + bptt], source[i + 1:i + 1 + bptt]
        x = x[:len(y)]
        logits, hidden = model(x, hidden)
        total += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
        count += y.numel()
    model.train()
    return total / count


def reference(budget: float, batch: int, bptt: int, vocab: int) -> dict:
    tokens = WORK / "data" / "tokens" / "char"
    train = batchify(np.memmap(tokens / "train.bin", dtype=np.uint16, mode="r"), batch)
    val = batchify(np.memmap(tokens / "val.bin", dtype=np.uint16, mode="r"), 10)
    torch.manual_seed(0)
    model = RNNModel(vocab, 256, 256, 2, 0.1)
    lr, clock, steps, best = 20.0, 0.0, 0, float("inf")
    hidden, position = None, 0
    while clock < budget:
        start = time.perf_counter()
        if position + bptt + 1 > train.size(0):
            position, hidden = 0, None
        x, y = train[position:position + bptt], train[position + 1:position + 1 + bptt]
        position += bptt
        hidden = None if hidden is None else tuple(h.detach() for h in hidden)  # repackage_hidden
        model.zero_grad()
        logits, hidden = model(x, hidden)
        F.cross_entropy(logits.flatten(0, 1), y.flatten()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)
        clock += time.perf_counter() - start
        steps += 1
        if steps % 500 == 0:  # the example anneals at epoch ends; a budget this short needs a shorter cadence
            loss = evaluate(model, val[:2000], bptt)
            lr = lr if loss < best else lr / 4
            best = min(best, loss)
    return {"run": "PyTorch word_language_model recipe (LSTM 2x256, tied, SGD 20)", "steps": steps,
            "tokens_per_s": steps * batch * bptt / clock, "val_loss": evaluate(model, val, bptt), "seconds": clock}


def ours(budget: float) -> dict:
    run = WORK / "runs" / f"lstm-ref-{budget:.0f}s"
    subprocess.run(["rm", "-rf", str(run)])
    cli = [sys.executable, "-m", "lmforge"]
    summary = json.loads(subprocess.run([*cli, "train", "--data", WORK / "data" / "tokens" / "char", "--model", "lstm",
                                         "--preset", "tiny", "--out", run, "--max-time", str(budget), "--json"],
                                        capture_output=True, text=True, check=True).stdout)
    result = json.loads(subprocess.run([*cli, "eval", "--run", run, "--json"], capture_output=True, text=True,
                                       check=True).stdout)
    return {"run": "lmforge train --model lstm --preset tiny", "steps": summary["steps"],
            "tokens_per_s": summary["tokens_per_s"], "val_loss": result["val_loss"], "seconds": summary["train_time"]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=60.0)
    args = parser.parse_args()
    vocab = json.loads((WORK / "data" / "tokens" / "char" / "meta.json").read_text())["vocab_size"]
    torch.set_num_threads(2)
    print(f"# {machine()}; budget {args.budget:.0f}s; same shape: 2 x LSTM(256), tied, batch 32, bptt 64")
    rows = [reference(args.budget, 32, 64, vocab), ours(args.budget)]
    for row in rows:
        row["bits_per_char"] = row["val_loss"] / math.log(2)
        print(json.dumps(row), flush=True)
    print(json.dumps({"tokens_per_s_ratio": round(rows[1]["tokens_per_s"] / rows[0]["tokens_per_s"], 2),
                      "val_loss_difference": round(rows[1]["val_loss"] - rows[0]["val_loss"], 4)}))


if __name__ == "__main__":
    main()
