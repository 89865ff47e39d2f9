"""Generation tokens/s (batch 1, 256 new tokens, CPU): lmforge KV-cached decoding vs HF `generate`.
    python bench/generate_speed.py [--preset tiny]
"""

from __future__ import annotations

import json
import time

import torch
from common import generation_arguments, hf_llama, machine, ours

from lmforge.inference.decoding import generate
from lmforge.inference.quantize import quantize_int8
from lmforge.inference.sampling import SamplingConfig
from lmforge.models.gpt import PRESETS, GPTConfig


def main() -> None:
    args = generation_arguments()
    print(f"# {machine()}")
    prompt = list(range(10, 42))
    for preset in args.presets:
        config = GPTConfig(vocab_size=4096, **{**PRESETS[preset], "max_seq_len": 512})
        model, reference = ours(config).eval(), hf_llama(config).eval()
        greedy = SamplingConfig(temperature=0)

        def run_ours(model=model, greedy=greedy):
            generate(model, prompt, max_new_tokens=args.new_tokens, sampling=greedy, seed=0, eos_id=None,
                     decode=lambda ids: "")

        def run_hf(reference=reference):
            with torch.inference_mode():
                reference.generate(torch.tensor([prompt]), max_new_tokens=args.new_tokens,
                                   min_new_tokens=args.new_tokens, do_sample=False, pad_token_id=0)

        int8 = quantize_int8(ours(config).eval())

        def run_int8(int8=int8, greedy=greedy):
            generate(int8, prompt, max_new_tokens=args.new_tokens, sampling=greedy, seed=0, eos_id=None,
                     decode=lambda ids: "")

        rates = {}
        for name, fn in (("lmforge", run_ours), ("hf_generate", run_hf), ("lmforge_int8", run_int8)):
            fn()  # warm-up
            start = time.perf_counter()
            for _ in range(args.repeats):
                fn()
            rates[name] = args.new_tokens * args.repeats / (time.perf_counter() - start)
        print(json.dumps({"preset": preset, "new_tokens": args.new_tokens, "lmforge_tok_s": round(rates["lmforge"]),
                          "hf_generate_tok_s": round(rates["hf_generate"]),
                          "ratio": round(rates["lmforge"] / rates["hf_generate"], 2),
                          "lmforge_int8_tok_s": round(rates["lmforge_int8"]),
                          "int8_ratio": round(rates["lmforge_int8"] / rates["hf_generate"], 2)}))


if __name__ == "__main__":
    main()
