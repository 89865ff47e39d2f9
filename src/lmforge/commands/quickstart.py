"""`lmforge quickstart`: prepare -> tokenizer -> tokenize -> train -> eval -> generate, on CPU, in minutes.

The default corpus is Python's own documentation (no download). Example:
    lmforge quickstart                       # ~4 minutes on 2 CPU cores
    lmforge quickstart --source my_texts/ --max-time 600
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from lmforge.commands.eval import evaluate_run
from lmforge.commands.tokenize import tokenize_dataset
from lmforge.commands.tokenizer import train_tokenizer_on
from lmforge.data.embedded import write_embedded_corpus
from lmforge.data.prepare import PrepareConfig, prepare_corpus
from lmforge.data.shards import read_meta
from lmforge.errors import InputError
from lmforge.inference.generate import generate
from lmforge.inference.loading import load_run
from lmforge.inference.sampling import SamplingConfig
from lmforge.training.runs import new_run, resolve_configs


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    parser.add_argument("--source", default=None,
                        help="files/folder to use instead of the embedded corpus, or hf:DATASET_NAME")
    parser.add_argument("--out", type=Path, default=Path("quickstart"), help="working directory")
    parser.add_argument("--vocab-size", type=int, default=4096, help="BPE vocabulary size")
    parser.add_argument("--max-time", type=float, default=150.0, help="training seconds")
    parser.add_argument("--preset", default="tiny", help="model preset")
    parser.add_argument("--prompt", default="The", help="prompt of the sample")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout")


def _sources(args) -> tuple[list[Path], str]:
    if args.source is None:
        info = write_embedded_corpus(args.out / "corpus" / "python-docs.jsonl.gz")
        return [Path(info["path"])], f"embedded Python documentation ({info['documents']:,} docs)"
    if args.source.startswith("hf:"):  # streamed by the prepare stage's hub reader
        return [args.source], args.source
    return [Path(args.source)], args.source


def run_quickstart(args) -> dict:
    started = time.perf_counter()
    out: Path = args.out
    say = lambda text: print(f"\n== {text}", file=sys.stderr)  # noqa: E731
    say("1/6 corpus")
    sources, corpus_name = _sources(args)
    say("2/6 prepare")
    stats = prepare_corpus(sources, out / "data", PrepareConfig(val_fraction=0.05), overwrite=True)
    if not stats["docs_out"].get("val"):  # stop before the expensive stages, not after them
        raise InputError(f"{corpus_name}: too little text for a validation split (5% of documents); "
                         "give quickstart more documents.")
    say("3/6 tokenizer")
    tokenizer_dir = train_tokenizer_on(out / "data", "bpe", args.vocab_size, out / "tokenizer", overwrite=True)
    say("4/6 tokenize")
    shards = tokenize_dataset(out / "data", tokenizer_dir, out / "data" / "tokens" / "bpe", overwrite=True)
    meta = read_meta(Path(shards["out"]))
    say(f"5/6 train ({args.max_time:.0f}s)")
    run_dir = out / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    summary = _train_tiny(args, meta, run_dir)
    say("6/6 eval + generate")
    result = evaluate_run(run_dir, device="cpu")
    model, tokenizer, _ = load_run(run_dir)
    sample = generate(model, tokenizer.encode(args.prompt), max_new_tokens=120,
                      sampling=SamplingConfig(temperature=0.8, top_p=0.95), seed=1, eos_id=tokenizer.eos_id,
                      decode=tokenizer.decode)
    return {"corpus": corpus_name, "corpus_bytes": stats["bytes_out"], "tokens": shards["splits"],
            "params": summary["params"], "steps": summary["steps"], "tokens_per_s": summary["tokens_per_s"],
            "mfu": summary["mfu"], "val_loss": result["val_loss"], "bits_per_byte": result["bits_per_byte"],
            "unigram_bits_per_byte": result["unigram_bits_per_byte"], "sample": args.prompt + sample.text,
            "run_dir": str(run_dir), "loss_plot": str(run_dir / "loss.png"),
            "seconds": time.perf_counter() - started}


def _train_tiny(args, meta, run_dir: Path) -> dict:
    """The same recipe `lmforge train --preset P --max-time T` uses: one set of defaults for both."""
    model_config, train_config = resolve_configs("gpt", args.preset, meta.vocab_size, {}, {},
                                                 {"max_time": args.max_time})
    return new_run(run_dir, "gpt", args.preset, model_config, train_config, meta)


def print_report(report: dict) -> None:
    train_tokens = report["tokens"]["train"]["tokens"]
    lines = [
        "", "lmforge quickstart report",
        f"  corpus          {report['corpus']}: {sum(report['corpus_bytes'].values()) / 1e6:.2f} MB clean text",
        f"  tokens          {train_tokens:,} train / {report['tokens']['val']['tokens']:,} val (BPE)",
        f"  model           GPT, {report['params'] / 1e6:.2f}M parameters, {report['steps']} steps",
        f"  speed           {report['tokens_per_s']:,.0f} tokens/s"
        + (f", MFU {100 * report['mfu']:.1f}%" if report.get("mfu") else ""),
        f"  val loss        {report['val_loss']:.3f} nats/token",
        f"  bits per byte   {report['bits_per_byte']:.3f} (unigram baseline {report['unigram_bits_per_byte']:.3f})",
        f"  sample          {report['sample']!r}",
        f"  run             {report['run_dir']}  (loss plot: {report['loss_plot']})",
        f"  total time      {report['seconds']:.0f}s",
        "", "next: lmforge generate --run " + report["run_dir"] + " --prompt 'The' --max-new-tokens 200",
    ]
    print("\n".join(lines), file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if args.max_time <= 0:
        raise InputError(f"--max-time must be positive, got {args.max_time}.")
    report = run_quickstart(args)
    print_report(report)
    if args.json:
        print(json.dumps(report))
    return 0
