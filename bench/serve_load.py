"""Serving under load: `lmforge serve` (the documented command, continuous batching) on 127.0.0.1 with a
load generator that stops by itself: a fixed set of seeded, streamed completion requests sent with 1, 2,
4 and 8 clients at once. It reports time to first token and inter-token latency (p50/p99), throughput
(completion tokens/s) and errors; concurrency 1 is "the same requests served one after another". Every
request generates exactly --max-tokens tokens (`min_tokens`, vLLM's extension), as the reference does.

Beside it, the reference a user would pick until GGUF export lands (llama.cpp's server then): Hugging Face
transformers' own server, `transformers serve DIR --continuous-batching` (and without it), on the same weights
exported as a LlamaForCausalLM folder, under the same load generator, prompts and token counts; and HF `generate`
in static batches of the same size, in process (no HTTP: a ceiling for batching whole requests).

Then 100 concurrent clients mixing valid, malformed, oversized and disconnecting requests: the server must
stay up, answer no valid request with a 5xx, and come back to its idle memory.

The model is the `small` preset trained 600 s by `lmforge train --preset small --max-time 600` on the
Python-docs corpus `lmforge quickstart` embeds (shared with speculative_speed.py). CPU, 2 threads.

    python bench/serve_load.py [--requests 16] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import hf_llama, machine  # noqa: E402
from speculative_speed import WORK, held_out_prompts, shards, trained  # noqa: E402

from lmforge.inference.loading import load  # noqa: E402
from lmforge.models.convert import to_llama  # noqa: E402
from lmforge.tokenization.tokenizer import Tokenizer  # noqa: E402

CONCURRENCY = (1, 2, 4, 8)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(run: Path, port: int, threads: int) -> subprocess.Popen:
    return wait_for(subprocess.Popen([sys.executable, "-m", "lmforge", "serve", str(run), "--port", str(port),
                                      "--max-batch", "8", "--threads", str(threads)], stderr=subprocess.PIPE,
                                     text=True), port, "lmforge serve")


def export_hf(run: Path, out: Path, max_tokens: int) -> Path:
    """The run as a transformers LlamaForCausalLM folder with its tokenizer; generation never stops early
    (no EOS, min_new_tokens = max_tokens), as lmforge's requests do with `min_tokens`."""
    from transformers import PreTrainedTokenizerFast

    loaded = load(run, "generate", ("lm",))
    reference = hf_llama(loaded.model.config).eval()
    reference.load_state_dict(to_llama(loaded.model))
    reference.config.eos_token_id = reference.config.bos_token_id = None
    reference.generation_config.eos_token_id = reference.generation_config.bos_token_id = None
    reference.generation_config.min_new_tokens = max_tokens
    reference.generation_config.do_sample = True
    reference.save_pretrained(out)
    PreTrainedTokenizerFast(tokenizer_file=str(run / "tokenizer.json"), pad_token="<|pad|>").save_pretrained(out)
    return out


def start_reference(folder: Path, port: int, continuous: bool) -> subprocess.Popen:
    command = [str(Path(sys.executable).parent / "transformers"), "serve", str(folder), "--device", "cpu",
               "--dtype", "float32", "--host", "127.0.0.1", "--port", str(port), "--log-level", "error",
               "--continuous-batching" if continuous else "--no-continuous-batching"]
    return wait_for(subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True), port,
                    "transformers serve")


def wait_for(process: subprocess.Popen, port: int, name: str) -> subprocess.Popen:
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{name} did not come up: " + process.stderr.read()[-2000:])


async def one_stream(client: httpx.AsyncClient, url: str, model: str, prompt: str, max_tokens: int, seed: int,
                     fixed: bool):
    """(ttft seconds, inter-token gaps, completion tokens, error) of one streamed completion. `fixed`: ask for
    exactly max_tokens with `min_tokens` (transformers serve refuses the field: its exported generation config
    has no EOS and min_new_tokens = max_tokens instead)."""
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.8, "seed": seed,
            "stream": True, "stream_options": {"include_usage": True}, **({"min_tokens": max_tokens} if fixed else {})}
    start = time.perf_counter()
    stamps, usage = [], None
    try:
        async with client.stream("POST", url + "/v1/completions", json=body) as response:
            if response.status_code != 200:
                return None, [], 0, response.status_code
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if chunk.get("usage"):
                    usage = chunk["usage"]["completion_tokens"]
                if chunk.get("choices") and chunk["choices"][0].get("text"):
                    stamps.append(time.perf_counter())
    except httpx.HTTPError as error:
        return None, [], 0, type(error).__name__
    tokens = usage if usage is not None else len(stamps)   # a server without usage: one chunk per token
    if not stamps:
        return None, [], tokens, None
    return stamps[0] - start, list(np.diff(stamps)), tokens, None


async def load_run(url: str, model: str, prompts: list[str], max_tokens: int, concurrency: int,
                   fixed: bool = True) -> dict:
    queue = list(enumerate(prompts))
    results = []

    async def worker(client):
        while queue:
            i, prompt = queue.pop(0)
            results.append(await one_stream(client, url, model, prompt, max_tokens, i, fixed))

    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=300) as client:
        await asyncio.gather(*[worker(client) for _ in range(concurrency)])
    wall = time.perf_counter() - start
    ttft = [r[0] for r in results if r[0] is not None]
    gaps = [g for r in results for g in r[1]]
    tokens = sum(r[2] for r in results)
    pct = lambda xs, q: round(float(np.percentile(xs, q)) * 1000, 1) if xs else None  # noqa: E731
    return {"concurrency": concurrency, "requests": len(prompts), "errors": sum(r[3] is not None for r in results),
            "completion_tokens": tokens, "seconds": round(wall, 2), "tokens_per_s": round(tokens / wall, 1),
            "ttft_p50_ms": pct(ttft, 50), "ttft_p99_ms": pct(ttft, 99), "itl_p50_ms": pct(gaps, 50),
            "itl_p99_ms": pct(gaps, 99)}


async def chaos(url: str, model: str, prompt: str, clients: int = 100) -> dict:
    """valid, malformed, oversized and disconnecting requests at once."""
    async def valid(client):
        r = await client.post(url + "/v1/completions", json={"model": model, "prompt": prompt, "max_tokens": 16,
                                                             "temperature": 0.8, "seed": 1})
        return "valid", r.status_code

    async def malformed(client):
        r = await client.post(url + "/v1/completions", content=b'{"model": "x", "prompt": ')
        return "malformed", r.status_code

    async def oversized(client):
        r = await client.post(url + "/v1/completions", json={"model": model, "prompt": "x" * (2 << 20)})
        return "oversized", r.status_code

    async def disconnecting(client):
        body = {"model": model, "prompt": prompt, "max_tokens": 200, "stream": True}
        async with client.stream("POST", url + "/v1/completions", json=body) as response:
            async for _ in response.aiter_lines():
                break   # leave after the first line
        return "disconnecting", response.status_code

    kinds = [valid, malformed, oversized, disconnecting]
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=clients)) as client:
        outcomes = await asyncio.gather(*[kinds[i % 4](client) for i in range(clients)], return_exceptions=True)
    counts: dict[str, dict] = {}
    for outcome in outcomes:
        kind, status = ("exception", type(outcome).__name__) if isinstance(outcome, BaseException) else outcome
        counts.setdefault(kind, {}).setdefault(str(status), 0)
        counts[kind][str(status)] += 1
    return counts


def hf_static(reference, prompt_ids: list[list[int]], max_tokens: int, batch: int) -> dict:
    """HF generate, sampled, whole batches of `batch` requests left-padded: tokens/s over all prompts."""
    start, tokens = time.perf_counter(), 0
    for first in range(0, len(prompt_ids), batch):
        chunk = prompt_ids[first:first + batch]
        width = max(len(p) for p in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, p in enumerate(chunk):
            ids[row, width - len(p):] = torch.tensor(p)
            mask[row, width - len(p):] = 1
        torch.manual_seed(first)
        with torch.inference_mode():
            out = reference.generate(ids, attention_mask=mask, max_new_tokens=max_tokens, min_new_tokens=max_tokens,
                                     do_sample=True, temperature=0.8, top_p=1.0, pad_token_id=0, eos_token_id=None)
        tokens += (out.shape[1] - width) * len(chunk)
    wall = time.perf_counter() - start
    return {"batch": batch, "completion_tokens": tokens, "seconds": round(wall, 2),
            "tokens_per_s": round(tokens / wall, 1)}


def reference_rows(folder: Path, prompts: list[str], max_tokens: int, continuous: bool) -> list[dict]:
    """The same load against `transformers serve` (one model preloaded; its name is the folder)."""
    port = free_port()
    server = start_reference(folder, port, continuous)
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(load_run(url, str(folder), prompts[:2], 8, 1, fixed=False))  # warm-up
        return [asyncio.run(load_run(url, str(folder), prompts, max_tokens, c, fixed=False)) for c in CONCURRENCY]
    finally:
        server.terminate()
        server.wait(30)


def print_table(title: str, rows: list[dict], serial: float, beside: dict[str, list[dict]]) -> None:
    print(title)
    names = "".join(f" {name:>12} {'vs':>6}" for name in beside)
    print(f"{'clients':>7} {'tok/s':>8} {'vs 1':>6}{names} {'TTFT p50/p99 ms':>16} {'ITL p50/p99 ms':>15} "
          f"{'errors':>6}")
    for i, row in enumerate(rows):
        others = "".join(f" {other[i]['tokens_per_s']:>12.1f} {row['tokens_per_s'] / other[i]['tokens_per_s']:>5.2f}x"
                         for other in beside.values())
        print(f"{row['concurrency']:>7} {row['tokens_per_s']:>8.1f} {row['tokens_per_s'] / serial:>5.2f}x{others} "
              f"{row['ttft_p50_ms']:>7}/{row['ttft_p99_ms']:<8} {row['itl_p50_ms']:>6}/{row['itl_p99_ms']:<8} "
              f"{row['errors']:>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/lmforge-bench-serve.json"))
    args = parser.parse_args()
    tokens = shards()
    run = trained(tokens, "small", 600)
    tokenizer = Tokenizer(tokens / "tokenizer.json")
    prompt_ids = held_out_prompts(tokens, args.requests, 32)
    prompts = [tokenizer.decode(p) for p in prompt_ids]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(run, port, args.threads)
    model = run.name
    try:
        asyncio.run(load_run(url, model, prompts[:2], 8, 1))                      # warm-up
        idle = rss_mb(server.pid)
        rows = [asyncio.run(load_run(url, model, prompts, args.max_tokens, c)) for c in CONCURRENCY]
        chaos_counts = asyncio.run(chaos(url, model, prompts[0]))
        time.sleep(2)
        after = rss_mb(server.pid)
        alive = server.poll() is None and httpx.get(url + "/health").status_code == 200
    finally:
        server.terminate()
        server.wait(30)
    folder = export_hf(run, WORK / "hf" / run.name, args.max_tokens)
    beside = {"HF serve cb": reference_rows(folder, prompts, args.max_tokens, continuous=True),
              "HF serve": reference_rows(folder, prompts, args.max_tokens, continuous=False)}
    torch.set_num_threads(args.threads)
    loaded = load(run, "generate", ("lm",))
    reference = hf_llama(loaded.model.config).eval()
    reference.load_state_dict(to_llama(loaded.model))
    beside["HF static"] = [hf_static(reference, [tokenizer.encode(p) for p in prompts], args.max_tokens, c)
                           for c in CONCURRENCY]
    print_table(f"lmforge serve ({model}, {args.requests} streamed requests of {args.max_tokens} tokens, "
                f"{args.threads} threads; {machine()}); beside it: transformers serve with and without "
                "--continuous-batching, and HF generate in static batches in process", rows, rows[0]["tokens_per_s"],
                beside)
    for name in ("HF serve cb", "HF serve"):
        print_table(f"{name}:", beside[name], beside[name][0]["tokens_per_s"], {})
    valid_5xx = sum(n for status, n in chaos_counts.get("valid", {}).items() if status.startswith("5"))
    print(f"100 mixed clients: {chaos_counts}; valid requests answered 5xx: {valid_5xx}; server up: {alive}; "
          f"RSS idle {idle:.0f} MB -> after {after:.0f} MB")
    report = {"machine": machine(), "run": str(run), "load": rows, **beside, "chaos": chaos_counts,
              "valid_5xx": valid_5xx, "alive": alive, "rss_idle_mb": idle, "rss_after_mb": after}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    os.sync()


if __name__ == "__main__":
    main()
