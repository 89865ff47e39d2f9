"""Which run can go to which format: one table, so a refusal always names the formats that do serve it."""

from __future__ import annotations

from lmforge.errors import InputError
from lmforge.models.convert import hf_encoder_type
from lmforge.runs import Run

FORMATS = ("hf", "onnx", "gguf", "ctranslate2")


def _bert_config(run: Run):
    from lmforge.models import ALL_MODELS

    spec = ALL_MODELS[run.family]
    return run.section("model", spec.config_cls, spec.fixed)


def hf_refusal(run: Run) -> str | None:
    """Why a run has no Hugging Face layout (None: it has one)."""
    kind, family = run.contract.kind, run.family
    if kind == "lm" and family == "gpt":
        return None
    if family != "bert" or kind not in ("lm", "task"):
        return f"a {family} {'task run' if kind == 'task' else 'run'} has no Hugging Face transformers class"
    if hf_encoder_type(_bert_config(run)) is None:
        return "a BERT with rotary positions or a SwiGLU MLP has no Hugging Face class that computes the same"
    head = run.raw("head")
    if kind == "task" and head.get("task", "classify") == "classify" and head.get("pooling", "cls") != "cls":
        return f"HF's sequence classifiers read the first token; this head pools by {head['pooling']}"
    return None


def supported(run: Run) -> list[str]:
    """The formats `run` exports to."""
    kind = run.contract.kind
    formats = []
    if hf_refusal(run) is None:
        formats.append("hf")
    if kind == "task" or (kind == "lm" and run.family == "gpt"):
        formats.append("onnx")
    if kind == "lm" and run.family == "gpt":
        formats.append("gguf")
    if kind == "seq2seq" and run.family == "transformer":
        formats.append("ctranslate2")
    return formats


def require_format(run: Run, target: str) -> None:
    """Refuse in one line a format that cannot represent the run, naming those that can."""
    if target not in FORMATS:
        raise InputError(f"--format {target!r}: choose one of {', '.join(FORMATS)}.")
    formats = supported(run)
    if target in formats:
        return
    why = hf_refusal(run) if target == "hf" else None
    also = f"; it exports to {', '.join(formats)}" if formats else "; it exports to no format yet"
    if run.contract.kind == "ngram":
        also += " (n-gram runs: `lmforge ngram export` writes ARPA)"
    if run.contract.kind == "embeddings":
        also += " (word vectors: `lmforge embed export` writes word2vec text)"
    raise InputError(f"{run.path}: {why or f'{run.kind.what} ({run.family}) cannot be exported as {target}'}{also}.")
