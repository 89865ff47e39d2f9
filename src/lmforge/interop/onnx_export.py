"""`lmforge export --format onnx`: the GPT forward (token ids -> logits) or a task model (ids, attention
mask[, token types] -> logits) as one ONNX file with dynamic batch and length, checked in `onnxruntime`
on two input shapes."""

from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import torch
from torch import Tensor, nn

from lmforge.interop import parity
from lmforge.models.birnn import BiRNNEncoder
from lmforge.models.rnn import RNNLM

OPSET = 18


class OnnxForward(nn.Module):
    """The run's model with the inputs ONNX runtimes are given: int64 ids, an int64 mask of real tokens
    (1) and padding (0), and token types for an encoder's sentence pairs."""

    def __init__(self, model: nn.Module, task: bool, encoder: bool):
        super().__init__()
        self.model, self.task, self.encoder = model, task, encoder

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> Tensor:
        if not self.task and not self.encoder:
            return self.model(input_ids)
        mask = attention_mask.bool()
        if self.task:
            return self.model(input_ids, mask, token_type_ids if self.encoder else None)
        return self.model(input_ids, mask, token_type_ids)


def input_names(task: bool, encoder: bool) -> list[str]:
    if encoder:
        return ["input_ids", "attention_mask", "token_type_ids"]
    return ["input_ids", "attention_mask"] if task else ["input_ids"]


def _feeds(sample: parity.Sample, names: list[str]) -> dict:
    values = {"input_ids": sample.ids, "attention_mask": sample.mask.long(), "token_type_ids": sample.segments}
    return {name: values[name] for name in names}


def _recurrent(model: nn.Module) -> bool:
    backbone = getattr(model, "backbone", model)
    return isinstance(backbone, (BiRNNEncoder, RNNLM))


@contextmanager
def _quiet_exporter():
    """torch.onnx prints its stages to stdout, which `--json` keeps for one JSON object."""
    import logging

    logger = logging.getLogger("torch.onnx")
    level, logger.level = logger.level, logging.ERROR
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        logger.setLevel(level)


def export_onnx(source, out: Path, verify: bool, name: str) -> dict:
    task = source.task_run is not None
    wrapper = OnnxForward(source.model, task, source.encoder).eval()
    names = input_names(task, source.encoder)
    sample = parity.sample_inputs(source.tokenizer, source.max_len, source.encoder, padded=task or source.encoder)
    per_token = not task or source.model.head_config.task != "classify"
    feeds = tuple(_feeds(sample, names).values())
    with torch.no_grad(), warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")   # the exporters' tracer and deprecation notes are not the user's concern
        if _recurrent(source.model):
            # packed sequences (right-to-left passes start at each row's last token) export only by tracing
            axes = {name: {0: "batch", 1: "sequence"} for name in names}
            axes["logits"] = {0: "batch", 1: "sequence"} if per_token else {0: "batch"}
            torch.onnx.export(wrapper, feeds, str(out), input_names=names, output_names=["logits"],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        else:
            batch, length = torch.export.Dim("batch", max=4096), torch.export.Dim("sequence", max=source.max_len)
            program = torch.onnx.export(wrapper, feeds, input_names=names, output_names=["logits"],
                                        dynamic_shapes={name: {0: batch, 1: length} for name in names},
                                        opset_version=OPSET, dynamo=True, verbose=False)
            program.save(str(out))
    architecture = f"{source.run.family} {'task model' if task else 'forward'} (opset {OPSET}, " \
                   f"{'per-token' if per_token else 'per-sequence'} logits)"
    summary = {"architecture": architecture, "inputs": names, "files": [name]}
    if not verify:
        return summary | {"verified": {"by": None, "passed": None, "skipped": "--no-verify"}}
    try:
        import onnxruntime
    except ImportError:
        return summary | {"verified": parity.skipped("onnxruntime")}
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    worst = 0.0
    # a second, shorter sample of one row: the exported graph must not have fixed the shapes it was traced at
    shorter = parity.sample_inputs(source.tokenizer, source.max_len, source.encoder, length=12,
                                    padded=task or source.encoder)
    shorter = parity.Sample(shorter.ids[:1], shorter.mask[:1], shorter.segments[:1])
    for case in (sample, shorter):
        theirs = torch.from_numpy(session.run(["logits"], {k: v.numpy() for k, v in _feeds(case, names).items()})[0])
        with torch.no_grad():
            ours = wrapper(*_feeds(case, names).values())
        worst = max(worst, parity.max_difference(ours, theirs, case.mask))
    return summary | {"verified": parity.record("onnxruntime", worst, sample, shapes_checked=2)}
