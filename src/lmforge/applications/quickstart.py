"""The whole pipeline on an embedded corpus (or your own files), as `lmforge quickstart` runs it: prepare,
a BPE tokenizer, shards, a GPT trained for a few minutes with the CLI defaults, eval and a sample. A
notebook calls `run_quickstart(QuickstartConfig(...))`."""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lmforge.applications.evaluate import EvalConfig, evaluate
from lmforge.data.embedded import write_embedded_corpus
from lmforge.data.prepare import PrepareConfig, prepare_corpus
from lmforge.data.shards import read_meta
from lmforge.errors import InputError
from lmforge.inference.decoding import generate
from lmforge.inference.loading import text_decoder
from lmforge.inference.sampling import SamplingConfig
from lmforge.tokenization.corpus import tokenize_dataset, train_tokenizer_on
from lmforge.training.runs import new_run, resolve_configs


@dataclass
class QuickstartConfig:
    source: str | None = None
    """files/folder to use instead of the embedded corpus, or hf:DATASET_NAME"""
    out: Path = Path("quickstart")
    """working directory"""
    vocab_size: int = 4096
    """BPE vocabulary size"""
    max_time: float = 150.0
    """training seconds"""
    preset: str = "tiny"
    """model preset"""
    prompt: str = "The"
    """prompt of the sample"""

    def __post_init__(self) -> None:
        if self.max_time <= 0:
            raise ValueError(f"--max-time must be positive, got {self.max_time}.")


def _sources(c: QuickstartConfig) -> tuple[list[Path], str]:
    if c.source is None:
        info = write_embedded_corpus(c.out / "corpus" / "python-docs.jsonl.gz")
        return [Path(info["path"])], f"embedded Python documentation ({info['documents']:,} docs)"
    if c.source.startswith("hf:"):  # streamed by the prepare stage's hub reader
        return [c.source], c.source
    return [Path(c.source)], c.source


def run_quickstart(c: QuickstartConfig) -> dict:
    """The whole pipeline into `c.out`; the report."""
    started = time.perf_counter()
    out: Path = c.out
    say = lambda text: print(f"\n== {text}", file=sys.stderr)  # noqa: E731
    say("1/6 corpus")
    sources, corpus_name = _sources(c)
    say("2/6 prepare")
    stats = prepare_corpus(sources, out / "data", PrepareConfig(val_fraction=0.05), overwrite=True)
    if not stats["docs_out"].get("val"):  # stop before the expensive stages, not after them
        raise InputError(f"{corpus_name}: too little text for a validation split (5% of documents); "
                         "give quickstart more documents.")
    say("3/6 tokenizer")
    tokenizer_dir = train_tokenizer_on(out / "data", "bpe", c.vocab_size, out / "tokenizer", overwrite=True)
    say("4/6 tokenize")
    shards = tokenize_dataset(out / "data", tokenizer_dir, out / "data" / "tokens" / "bpe", overwrite=True)
    meta = read_meta(Path(shards["out"]))
    say(f"5/6 train ({c.max_time:.0f}s)")
    run_dir = out / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    summary = _train_tiny(c, meta, run_dir)
    say("6/6 eval + generate")
    result = evaluate(EvalConfig(run=run_dir, device="cpu"))
    decoder = text_decoder(run_dir, "quickstart", "cpu")
    sample = generate(decoder.model, decoder.encode(c.prompt), max_new_tokens=120,
                      sampling=SamplingConfig(temperature=0.8, top_p=0.95), seed=1, eos_id=decoder.eos_id,
                      decode=decoder.decode)
    return {"corpus": corpus_name, "corpus_bytes": stats["bytes_out"], "tokens": shards["splits"],
            "params": summary["params"], "steps": summary["steps"], "tokens_per_s": summary["tokens_per_s"],
            "mfu": summary["mfu"], "val_loss": result["val_loss"], "bits_per_byte": result["bits_per_byte"],
            "unigram_bits_per_byte": result["unigram_bits_per_byte"], "sample": c.prompt + sample.text,
            "run_dir": str(run_dir), "loss_plot": str(run_dir / "loss.png"),
            "seconds": time.perf_counter() - started}


def _train_tiny(c: QuickstartConfig, meta, run_dir: Path) -> dict:
    """The same recipe `lmforge train --preset P --max-time T` uses: one set of defaults for both."""
    model_config, train_config, _ = resolve_configs("gpt", c.preset, meta.vocab_size, {}, {},
                                                    {"max_time": c.max_time})
    return new_run(run_dir, "gpt", c.preset, model_config, train_config, meta)
