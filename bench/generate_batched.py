"""Batched generation and beam search (CPU): lmforge decoding 32 prompts of mixed lengths one at a time, in
batches (rows decode together, each at its own length), and by beam search, against Hugging Face
`generate` on the same Llama shape with the same batch and left padding. Greedy tokens of every prompt are
compared with its batch-1 decoding, and beam search with HF `generate(num_beams=K)` on copied weights.
    python bench/generate_batched.py [--preset small] [--batch-size 8] [--new-tokens 128] [--beams 4]
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch
from common import hf_llama, machine, ours

from lmforge.inference.beam import beam_search
from lmforge.inference.decoding import generate, generate_batch
from lmforge.inference.sampling import SamplingConfig
from lmforge.models.convert import to_llama
from lmforge.models.gpt import PRESETS, GPTConfig

GREEDY = SamplingConfig(temperature=0)


def prompts_of(count: int, vocab: int, seed: int = 0) -> list[list[int]]:
    """Prompts of 8 to 64 tokens (ids above the special tokens)."""
    rng = random.Random(seed)
    return [[rng.randrange(10, vocab) for _ in range(rng.randint(8, 64))] for _ in range(count)]


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def ours_one_at_a_time(model, prompts, new_tokens):
    return [generate(model, p, max_new_tokens=new_tokens, sampling=GREEDY, seed=0, eos_id=None,
                     decode=lambda ids: "").token_ids for p in prompts]


def ours_batched(model, prompts, new_tokens, batch):
    out = []
    for first in range(0, len(prompts), batch):
        chunk = prompts[first:first + batch]
        out += [g.token_ids for g in generate_batch(model, chunk, max_new_tokens=new_tokens, sampling=GREEDY,
                                                    seeds=[0] * len(chunk), eos_id=None, decode=lambda ids: "")]
    return out


def hf_batched(reference, prompts, new_tokens, batch, beams=1):
    out = []
    for first in range(0, len(prompts), batch):
        chunk = prompts[first:first + batch]
        width = max(len(p) for p in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, p in enumerate(chunk):   # left padding, as HF asks of decoder-only models
            ids[row, width - len(p):] = torch.tensor(p)
            mask[row, width - len(p):] = 1
        with torch.inference_mode():
            sequences = reference.generate(ids, attention_mask=mask, max_new_tokens=new_tokens,
                                           min_new_tokens=new_tokens, do_sample=False, num_beams=beams,
                                           pad_token_id=0, eos_token_id=None)
        out += sequences[:, width:].tolist()
    return out


def ours_beams(model, prompts, new_tokens, batch, beams):
    out = []
    for first in range(0, len(prompts), batch):
        found = beam_search(model, prompts[first:first + batch], beams=beams, max_new_tokens=new_tokens,
                            eos_id=None, decode=lambda ids: "")
        out += [hypotheses[0].token_ids for hypotheses in found]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="small")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--beams", type=int, default=4)
    parser.add_argument("--beam-prompts", type=int, default=8, help="prompts decoded by beam search")
    parser.add_argument("--beam-batch", type=int, default=1,
                        help="prompts beam-searched together (and greedy-decoded together for the ratio)")
    args = parser.parse_args()
    print(f"# {machine()}")
    config = GPTConfig(vocab_size=4096, **{**PRESETS[args.preset], "max_seq_len": 512})
    model = ours(config).eval()
    reference = hf_llama(config).eval()
    reference.load_state_dict(to_llama(model))
    prompts = prompts_of(args.prompts, config.vocab_size)
    new = args.new_tokens * len(prompts)
    ours_batched(model, prompts[:2], 4, 2)   # warm-up
    single_s, single = timed(lambda: ours_one_at_a_time(model, prompts, args.new_tokens))
    batched_s, batched = timed(lambda: ours_batched(model, prompts, args.new_tokens, args.batch_size))
    hf_s, hf = timed(lambda: hf_batched(reference, prompts, args.new_tokens, args.batch_size))
    row = {"preset": args.preset, "prompts": len(prompts), "batch": args.batch_size, "new_tokens": args.new_tokens,
           "lmforge_batch1_tok_s": round(new / single_s), "lmforge_batched_tok_s": round(new / batched_s),
           "hf_batched_tok_s": round(new / hf_s), "batched_vs_batch1": round(single_s / batched_s, 2),
           "batched_vs_hf": round(hf_s / batched_s, 2),
           "greedy_identical_to_batch1": sum(a == b for a, b in zip(single, batched)),
           "greedy_identical_to_hf": sum(a == b for a, b in zip(batched, hf))}
    print(json.dumps(row), flush=True)
    few, batch = prompts[:args.beam_prompts], args.beam_batch
    greedy_s, _ = timed(lambda: ours_batched(model, few, args.new_tokens, batch))
    beam_s, beamed = timed(lambda: ours_beams(model, few, args.new_tokens, batch, args.beams))
    hf_beam_s, hf_beamed = timed(lambda: hf_batched(reference, few, args.new_tokens, batch, args.beams))
    tokens = args.new_tokens * len(few)
    print(json.dumps({"beams": args.beams, "prompts": len(few), "batch": batch,
                      "lmforge_greedy_tok_s": round(tokens / greedy_s),
                      "lmforge_beam_tok_s": round(tokens / beam_s), "beam_vs_greedy": round(greedy_s / beam_s, 2),
                      "hf_beam_tok_s": round(tokens / hf_beam_s), "beam_vs_hf": round(hf_beam_s / beam_s, 2),
                      "beam_identical_to_hf": sum(a == b for a, b in zip(beamed, hf_beamed))}), flush=True)


if __name__ == "__main__":
    main()
