"""Speculative decoding with trained models, batch 1, fp32, CPU, greedy: lmforge tokens/s against HF
`generate` (plain greedy, the same weights in a `LlamaForCausalLM`).

The target is the `small` preset and the drafter the `tiny` preset, both trained here with the documented
command (`lmforge train --preset P --max-time T`) on the same corpus: the Python documentation that
`lmforge quickstart` embeds, BPE 4k. Prompts are the first 64 tokens of documents of its validation split
(text the models never trained on). Drafters:
- `--draft tiny`: the trained tiny run (what `lmforge generate --draft RUN` does);
- `--prompt-lookup`: n-gram matches in the context (no draft model);
- `oracle@a`, an upper bound and not a drafter one can use: it proposes the target's own greedy
  continuation with each token wrong with probability 1 - a, which sets the acceptance rate.
    python bench/speculative_speed.py [--target-seconds 600] [--draft-seconds 240] [--prompts 4] [--k 4]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import hf_llama, machine

from lmforge.data.embedded import write_embedded_corpus
from lmforge.data.shards import read_meta
from lmforge.inference.decoding import generate
from lmforge.inference.loading import load
from lmforge.inference.sampling import SamplingConfig
from lmforge.inference.speculative import ModelDrafter, PromptLookupDrafter, generate_speculative
from lmforge.models.convert import to_llama
from lmforge.tokenization.tokenizer import Tokenizer

GREEDY = SamplingConfig(temperature=0)
WORK = Path("/tmp/lmforge-bench-speculative")


def cli(*args) -> None:
    done = subprocess.run([sys.executable, "-m", "lmforge", *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"lmforge {' '.join(map(str, args))}\n{done.stderr[-2000:]}")


def shards() -> Path:
    tokens = WORK / "data" / "tokens" / "bpe4k"
    if not (tokens / "meta.json").exists():
        info = write_embedded_corpus(WORK / "corpus" / "python-docs.jsonl.gz")
        cli("prepare", info["path"], "--out", WORK / "data", "--val-fraction", "0.05", "--overwrite")
        cli("tokenizer", "train", WORK / "data", "--kind", "bpe", "--vocab-size", "4096", "--out",
            WORK / "tok" / "bpe4k", "--overwrite")
        cli("tokenize", WORK / "data", "--tokenizer", WORK / "tok" / "bpe4k", "--overwrite")
    return tokens


def trained(tokens: Path, preset: str, seconds: float) -> Path:
    run = WORK / "runs" / f"{preset}-{seconds:.0f}s"
    if not (run / "model.safetensors").exists():
        subprocess.run(["rm", "-rf", str(run)])
        cli("train", "--data", tokens, "--preset", preset, "--max-time", seconds, "--out", run)
    return run


def held_out_prompts(tokens: Path, count: int, length: int) -> list[list[int]]:
    """The first `length` tokens of the first `count` validation documents that long (EOS ends a document)."""
    val = np.asarray(read_meta(tokens).tokens("val"))
    eos = Tokenizer(tokens / "tokenizer.json").eos_id
    bounds = np.flatnonzero(val == eos)
    starts = np.concatenate([[0], bounds + 1])
    prompts = []
    for start, end in zip(starts, np.concatenate([bounds, [len(val)]])):
        if end - start >= length and len(prompts) < count:
            prompts.append(val[start:start + length].astype(np.int64).tolist())
    return prompts


class OracleDrafter:
    """Drafts the known greedy continuation; each drafted token is wrong with probability 1 - rate."""

    def __init__(self, prompt_len: int, reference: list[int], rate: float, k: int, vocab: int):
        self.prompt_len, self.reference, self.rate, self.k, self.vocab = prompt_len, reference, rate, k, vocab
        self.rng = random.Random(0)

    def propose(self, context, sampling, generator):
        done = len(context) - self.prompt_len
        guess = self.reference[done:done + self.k]
        return [t if self.rng.random() < self.rate else (t + 1 + self.rng.randrange(self.vocab - 1)) % self.vocab
                for t in guess], None


def seconds_of(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target-seconds", type=float, default=600)
    parser.add_argument("--draft-seconds", type=float, default=240)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(2)
    tokens = shards()
    target = load(trained(tokens, "small", args.target_seconds), "bench", ("lm",)).model
    draft = load(trained(tokens, "tiny", args.draft_seconds), "bench", ("lm",)).model
    reference = hf_llama(target.config).eval()
    reference.load_state_dict(to_llama(target))
    prompts = held_out_prompts(tokens, args.prompts, args.prompt_tokens)
    print(f"# {machine()}; target small ({args.target_seconds:.0f} s), drafter tiny ({args.draft_seconds:.0f} s), "
          f"{len(prompts)} held-out prompts of {args.prompt_tokens} tokens, {args.new_tokens} new tokens, k {args.k}")
    rows = measure(target, draft, reference, prompts, args.new_tokens, args.k)
    for row in rows:
        print(json.dumps(row), flush=True)


def measure(target, draft, reference, prompts, n: int, k: int) -> list[dict]:
    total = n * len(prompts)
    generate(target, prompts[0], max_new_tokens=4, sampling=GREEDY, seed=0, eos_id=None, decode=lambda ids: "")
    hf_s, _ = seconds_of(lambda: [reference.generate(torch.tensor([p]), max_new_tokens=n, min_new_tokens=n,
                                                     do_sample=False, pad_token_id=0) for p in prompts])
    plain_s, plain = seconds_of(lambda: [generate(target, p, max_new_tokens=n, sampling=GREEDY, seed=0, eos_id=None,
                                                  decode=lambda ids: "").token_ids for p in prompts])
    rows = [{"drafter": "HF generate (plain greedy)", "tok_s": round(total / hf_s)},
            {"drafter": "lmforge, no drafter", "tok_s": round(total / plain_s), "vs_hf": round(hf_s / plain_s, 2)}]
    drafters = {"--draft tiny (trained, same corpus)": lambda i: ModelDrafter(draft, k=k),
                "--prompt-lookup": lambda i: PromptLookupDrafter(ngram=3, k=k)}
    drafters.update({f"oracle@{rate:.2f} (upper bound)": (lambda i, rate=rate: OracleDrafter(
        len(prompts[i]), plain[i], rate, k, target.config.vocab_size)) for rate in (1.0, 0.75, 0.5)})
    for name, make in drafters.items():
        seconds, results = seconds_of(lambda make=make: [generate_speculative(
            target, p, make(i), max_new_tokens=n, sampling=GREEDY, seed=0, eos_id=None, decode=lambda ids: "")
            for i, p in enumerate(prompts)])
        accepted = sum(stats.accepted for _, stats in results)
        drafted = sum(stats.drafted for _, stats in results)
        same = sum(out.token_ids == reference_ids for (out, _), reference_ids in zip(results, plain))
        rows.append({"drafter": name, "tok_s": round(total / seconds), "vs_hf": round(hf_s / seconds, 2),
                     "acceptance": round(accepted / max(drafted, 1), 3), "prompts_equal_to_plain_greedy": same})
    return rows


if __name__ == "__main__":
    main()
