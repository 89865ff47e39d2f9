"""`lmforge export`: a run written in another ecosystem's format and verified there (interop/parity.py).
The files go to a hidden folder and move into place at the end; a record of the export and its check
(lmforge_export.json) goes with them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from lmforge.artifacts import write_json
from lmforge.errors import InputError
from lmforge.inference.loading import load_lm
from lmforge.inference.tasks import load_task_run
from lmforge.interop import parity
from lmforge.interop.files import RECORD, staged
from lmforge.interop.formats import require_format
from lmforge.runs import open_run
from lmforge.tokenization.chat import load_template

EXPORT_FORMAT, EXPORT_VERSION = "lmforge.export", 1


@dataclass
class ExportConfig:
    run: Path
    """Run directory to export."""
    format: str = "hf"
    """hf (transformers folder), onnx (one .onnx file), gguf (one .gguf file for llama.cpp) or ctranslate2
    (a CTranslate2 model folder, for translation Transformers)."""
    out: Path = Path("export")
    """Output folder (hf) or file (onnx, gguf)."""
    dtype: str = "f32"
    """gguf: f32 or f16 weights."""
    verify: bool = True
    """Load the export in its runtime and compare outputs with lmforge's (skipped, and said so, without it)."""
    overwrite: bool = False


@dataclass
class Source:
    """The run's model as a function of a sample, and what the writers need of it."""

    run: object
    model: object
    tokenizer: object
    encoder: bool
    max_len: int
    task_run: object = None

    def outputs(self, sample: parity.Sample):
        import torch

        with torch.no_grad():
            if self.task_run is not None:
                return self.model(sample.ids, sample.mask, sample.segments if self.encoder else None)
            if self.encoder:
                return self.model(sample.ids, sample.mask, sample.segments)
            return self.model(sample.ids)


def load_source(run) -> Source:
    if run.contract.kind == "seq2seq":
        from lmforge.inference.translation import load_seq2seq

        loaded = load_seq2seq(run)
        return Source(run, loaded, loaded.src, False, loaded.model.config.max_seq_len)
    if run.contract.kind == "task":
        task_run = load_task_run(run, verb="export")
        return Source(run, task_run.model, task_run.tokenizer, task_run.encoder, task_run.max_len, task_run)
    loaded = load_lm(run)
    encoder = loaded.spec.kind == "encoder"
    return Source(run, loaded.model, loaded.tokenizer, encoder, loaded.model.config.max_seq_len)


def export_run(c: ExportConfig) -> dict:
    """Write the export of `c.run` to `c.out`; the summary (with the verification) as a dict."""
    run = open_run(c.run)
    require_format(run, c.format)
    if c.format == "gguf" and c.dtype not in ("f32", "f16"):
        raise InputError(f"--dtype {c.dtype!r}: gguf exports f32 or f16 weights.")
    source = load_source(run)
    started = time.perf_counter()
    writers = {"hf": _export_hf, "onnx": _export_onnx, "gguf": _export_gguf, "ctranslate2": _export_ctranslate2}
    writer = writers[c.format]
    with staged(c.out, c.overwrite, directory=c.format == "hf") as tmp:
        summary = writer(source, tmp, c)
        summary |= {"format": c.format, "run": str(Path(c.run).resolve()), "out": str(c.out),
                    "seconds": round(time.perf_counter() - started, 2)}
        if c.format == "hf":
            write_json(tmp / RECORD, {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, **summary})
    return summary


def _export_hf(source: Source, tmp: Path, c: ExportConfig) -> dict:
    from lmforge.interop.hf_export import encoder_model, llama_model, write_model, write_tokenizer

    chat = load_template(source.run.path, source.tokenizer) if not source.encoder else None
    if source.task_run is not None:
        model = encoder_model(source.model.backbone, source.tokenizer, source.model, source.task_run)
    elif source.encoder:
        model = encoder_model(source.model, source.tokenizer)
    else:
        model = llama_model(source.model, source.tokenizer, chat is not None)
    write_model(model, tmp)
    write_tokenizer(source.tokenizer, source.run.path, tmp, source.encoder, source.max_len)
    summary = {"architecture": model.architecture, "files": sorted(p.name for p in tmp.iterdir())}
    if not c.verify:
        return summary | {"verified": {"by": None, "passed": None, "skipped": "--no-verify"}}
    try:
        import transformers  # noqa: F401
    except ImportError:
        return summary | {"verified": parity.skipped("transformers")}
    sample = parity.sample_inputs(source.tokenizer, source.max_len, source.encoder)
    theirs = parity.hf_outputs(tmp, model.architecture, sample, source.encoder)
    difference = parity.max_difference(source.outputs(sample), theirs, sample.mask)
    tokenizer_equal = parity.hf_tokenizer_equal(tmp, source.tokenizer, source.encoder, chat)
    return summary | {"verified": parity.record("transformers", difference, sample, tokenizer_equal=tokenizer_equal)}


def _export_onnx(source: Source, tmp: Path, c: ExportConfig) -> dict:
    from lmforge.interop.onnx_export import export_onnx

    return export_onnx(source, tmp, c.verify, Path(c.out).name)


def _export_ctranslate2(source: Source, tmp: Path, c: ExportConfig) -> dict:
    from lmforge.interop.ctranslate2_export import export_ctranslate2

    return export_ctranslate2(source.model, tmp, c.verify, Path(c.out).name)


def _export_gguf(source: Source, tmp: Path, c: ExportConfig) -> dict:
    from lmforge.interop.gguf_export import export_gguf

    return export_gguf(source, tmp, c.dtype, c.verify, Path(c.out).name)
