"""Helpers shared by the benchmark scripts: timing, the machine's fp32 matmul peak, HF Llama twin."""

from __future__ import annotations

import os
import platform
import time

import torch

from lmforge.models.convert import llama_config
from lmforge.models.gpt import GPT, GPTConfig


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, " \
           f"{torch.get_num_threads()} threads"


def fp32_matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """Measured fp32 FLOP/s of a large matmul: the MFU denominator on this CPU."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def hf_llama(config: GPTConfig):
    """transformers' LlamaForCausalLM with exactly our shape (the reference implementation)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(**llama_config(config), attn_implementation="sdpa"))


def generation_arguments():
    """The options of the generation-speed benchmarks: presets, new tokens, repeats."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args()


def ours(config: GPTConfig) -> GPT:
    torch.manual_seed(0)
    return GPT(config)
