"""Generation speed of the same model in llama.cpp and in lmforge (batch 1, greedy, 256 new tokens, 2 threads):
a GPT of each preset (random weights; speed does not depend on them) is written as an HF folder, brought in
with `lmforge import`, exported with `lmforge export --format gguf` (f32 and f16), and decoded by
llama-cpp-python and by lmforge's KV-cached decoder on the same prompt ids; plus the wall time of the
documented `lmforge generate` command. The reference serving is measured against.
    python bench/gguf_speed.py [--presets tiny small]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import generation_arguments, hf_llama, machine

from lmforge.inference.decoding import generate
from lmforge.inference.loading import load_lm
from lmforge.inference.sampling import SamplingConfig
from lmforge.models.gpt import PRESETS, GPTConfig
from lmforge.runs import open_run

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "moby_dick_lm" / "train.txt.gz"


def lmforge(*args) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lmforge", *map(str, args)], check=True, capture_output=True)
    return time.perf_counter() - started


def hf_folder(root: Path, preset: str, tokenizer: Path) -> Path:
    from transformers import PreTrainedTokenizerFast

    config = GPTConfig(vocab_size=4096, **{**PRESETS[preset], "max_seq_len": 512})
    torch.manual_seed(0)
    model = hf_llama(config)
    folder = root / f"hf-{preset}"
    model.save_pretrained(folder)
    PreTrainedTokenizerFast(tokenizer_file=str(tokenizer / "tokenizer.json"), eos_token="<|eos|>",
                            bos_token="<|bos|>", pad_token="<|pad|>").save_pretrained(folder)
    return folder


def llama_cpp_rate(path: Path, prompt: list[int], n: int, repeats: int) -> float:
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=512, n_threads=2, n_batch=512, verbose=False)
    rates = []
    for _ in range(repeats + 1):   # the first is warm-up
        started, count = time.perf_counter(), 0
        for _ in llm.generate(prompt, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
            count += 1
            if count == n:
                break
        rates.append(n / (time.perf_counter() - started))
    return max(rates[1:])


def lmforge_rate(run: Path, prompt: list[int], n: int, repeats: int) -> float:
    model = load_lm(open_run(run)).model
    rates = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        generate(model, prompt, max_new_tokens=n, sampling=SamplingConfig(temperature=0), seed=0, eos_id=None,
                 decode=lambda ids: "")
        rates.append(n / (time.perf_counter() - started))
    return max(rates[1:])


def main() -> None:
    args = generation_arguments()
    torch.set_num_threads(2)
    print(f"# {machine()}; {time.strftime('%Y-%m-%d')}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lmforge("prepare", CORPUS, "--out", root / "data", "--doc-split", "line")
        lmforge("tokenizer", "train", root / "data", "--kind", "bpe", "--vocab-size", "4096", "--out", root / "tok")
        for preset in args.presets:
            run = root / f"run-{preset}"
            lmforge("import", hf_folder(root, preset, root / "tok"), "--out", run)
            prompt = load_lm(open_run(run)).tokenizer.encode("Call me Ishmael. Some years ago")
            row = {"preset": preset, "new_tokens": args.new_tokens,
                   "lmforge_tok_s": round(lmforge_rate(run, prompt, args.new_tokens, args.repeats))}
            for dtype in ("f32", "f16"):
                gguf = root / f"{preset}-{dtype}.gguf"
                lmforge("export", "--run", run, "--format", "gguf", "--out", gguf, "--dtype", dtype)
                rate = llama_cpp_rate(gguf, prompt, args.new_tokens, args.repeats)
                row[f"llama_cpp_{dtype}_tok_s"] = round(rate)
                row[f"lmforge_vs_llama_cpp_{dtype}"] = round(row["lmforge_tok_s"] / rate, 2)
            seconds = lmforge("generate", "--run", run, "--prompt", "Call me Ishmael.", "--max-new-tokens",
                              args.new_tokens, "--temperature", "0")
            row["lmforge_generate_cli_s"] = round(seconds, 2)   # the documented command, start-up included
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
