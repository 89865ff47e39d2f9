"""Speculative decoding, batch 1, fp32, CPU: lmforge tokens/s against HF `generate` (plain greedy) on
the `small` preset, at several draft acceptance rates including the worst case.

Drafters measured:
- `oracle@a`: proposes the target's own greedy continuation, each token replaced by a random one
  with probability 1 - a; this sets the acceptance rate, so the table is speed as a function of it
  (a = 0 is the worst case: every pass verifies k wrong tokens and keeps one);
- `prompt-lookup`: n-gram matches in the context (no draft model), on a prompt with repetition;
- `draft tiny`: a `tiny` model as the drafter (random weights here, so its acceptance is low: a
  trained drafter of the same data does better; see the acceptance column).
    python bench/speculative_speed.py [--preset small] [--new-tokens 256] [--k 4]
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch
from common import hf_llama, machine, ours

from lmforge.inference.decoding import generate
from lmforge.inference.sampling import SamplingConfig
from lmforge.inference.speculative import ModelDrafter, PromptLookupDrafter, generate_speculative
from lmforge.models.gpt import PRESETS, GPTConfig

GREEDY = SamplingConfig(temperature=0)


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


def timed(fn, repeats: int) -> tuple[float, object]:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        result = fn()
    return (time.perf_counter() - start) / repeats, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="small")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"# {machine()}")
    config = GPTConfig(vocab_size=4096, **{**PRESETS[args.preset], "max_seq_len": 1024})
    model, reference = ours(config).eval(), hf_llama(config).eval()
    prompt = list(range(10, 42)) * 2   # a prompt with repetition, as code, lists and quotations have
    n = args.new_tokens
    hf_seconds, _ = timed(lambda: reference.generate(torch.tensor([prompt]), max_new_tokens=n, min_new_tokens=n,
                                                     do_sample=False, pad_token_id=0), args.repeats)
    plain_seconds, plain = timed(lambda: generate(model, prompt, max_new_tokens=n, sampling=GREEDY, seed=0,
                                                  eos_id=None, decode=lambda ids: ""), args.repeats)
    rows = [{"drafter": "none (plain lmforge)", "tok_s": n / plain_seconds, "acceptance": None}]
    tiny = ours(GPTConfig(vocab_size=4096, **{**PRESETS["tiny"], "max_seq_len": 1024})).eval()
    drafters = {f"oracle@{rate:.2f}": lambda rate=rate: OracleDrafter(len(prompt), plain.token_ids, rate, args.k, 4096)
                for rate in (1.0, 0.9, 0.75, 0.5, 0.25, 0.0)}
    drafters["prompt-lookup"] = lambda: PromptLookupDrafter(ngram=3, k=args.k)
    drafters["draft tiny (random weights)"] = lambda: ModelDrafter(tiny, k=args.k)
    for name, make in drafters.items():
        seconds, (out, stats) = timed(lambda make=make: generate_speculative(
            model, prompt, make(), max_new_tokens=n, sampling=GREEDY, seed=0, eos_id=None, decode=lambda ids: ""),
            args.repeats)
        # greedy speculative decoding is exact up to float near-ties between a k-token and a 1-token pass
        same = next((i for i, (a, b) in enumerate(zip(out.token_ids, plain.token_ids)) if a != b), n)
        rows.append({"drafter": name, "tok_s": n / seconds, "acceptance": stats.acceptance,
                     "tokens_equal_to_plain_greedy": same})
    hf_rate = n / hf_seconds
    print(json.dumps({"preset": args.preset, "k": args.k, "new_tokens": n, "hf_generate_tok_s": round(hf_rate)}))
    for row in rows:
        row.update(tok_s=round(row["tok_s"]), vs_hf=round(row["tok_s"] / hf_rate, 2))
        print(json.dumps(row))


if __name__ == "__main__":
    main()
