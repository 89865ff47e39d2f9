"""Magnitude pruning of a fine-tuned task model, and the before/after report: the metric on the valid
split, parameters, non-zero weights, file size (raw and gzip-compressed: safetensors stores zeros
densely, so only compression shows the saving) and examples/s, with an int8 (dynamic quantization)
row for CPU inference. A short re-fine-tuning (`retrain_epochs`) can win back what pruning cost: the
pruned weights get zero gradients, so AdamW (whose moments then stay zero) never moves them."""

from __future__ import annotations

import gzip
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn
from torch.nn.utils import prune

from lmforge.applications.evaluate import evaluate_task_run
from lmforge.applications.finetune import train_further
from lmforge.artifacts import save_weights
from lmforge.errors import InputError
from lmforge.inference.quantize import quantize_int8
from lmforge.inference.tasks import TaskRun, load_task_run, task_outputs
from lmforge.runs import RUN_CONFIG, open_run, write_run


@dataclass
class PruneConfig:
    run: Path = field(default=Path("."), metadata={"required": True})
    """fine-tuned run (lmforge finetune)"""
    sparsity: float = field(default=0.5, metadata={"required": True})
    """share of Linear weights to zero, in [0, 1)"""
    out: Path = field(default=Path("."), metadata={"required": True})
    """run directory of the pruned model"""
    per_layer: bool = False
    """the same sparsity in every layer (default: global)"""
    retrain_epochs: float = 0.0
    """then fine-tune this many epochs on the run's own training data, pruned weights held at zero (e.g. 1)"""
    retrain_lr: float = 1e-4
    """peak LR of that re-fine-tuning"""
    int8: bool = field(default=True, metadata={"flag": "--no-int8", "invert": True})
    """skip the int8 dynamic-quantization row"""
    overwrite: bool = False
    """replace a run already in --out"""

    def __post_init__(self) -> None:
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"--sparsity {self.sparsity}: must be in [0, 1) (the share of Linear weights set to "
                             "zero).")
        if self.retrain_epochs < 0 or self.retrain_lr <= 0:
            raise ValueError("--retrain-epochs must be 0 or more and --retrain-lr positive.")


def prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """Every Linear weight (attention, MLP, recurrent input/output projections, heads)."""
    return [(m, "weight") for m in model.modules() if isinstance(m, nn.Linear)]


def magnitude_prune(model: nn.Module, sparsity: float, per_layer: bool) -> None:
    """Zero the smallest-magnitude weights: `sparsity` of all Linear weights together (global), or of
    each one (per layer); the masks are then folded into the weights."""
    targets = prunable(model)
    if per_layer:
        for module, name in targets:
            prune.l1_unstructured(module, name, amount=sparsity)
    else:
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=sparsity)
    for module, name in targets:
        prune.remove(module, name)


def keep_zeros(model: nn.Module) -> list:
    """Make every pruned (exactly zero) Linear weight stay zero under training: its gradient is masked.
    Returns the hook handles."""
    handles = []
    for module, _ in prunable(model):
        mask = (module.weight != 0).to(module.weight.dtype)
        handles.append(module.weight.register_hook(lambda grad, mask=mask: grad * mask))
    return handles


def weight_stats(model: nn.Module) -> dict:
    params = sum(p.numel() for p in model.parameters())
    linear = sum(m.weight.numel() for m, _ in prunable(model))
    zeros = sum(int((m.weight == 0).sum()) for m, _ in prunable(model))
    return {"parameters": params, "nonzero_parameters": params - sum(int((p == 0).sum()) for p in model.parameters()),
            "linear_sparsity": zeros / max(linear, 1)}


def file_sizes(path: Path) -> dict:
    raw = path.read_bytes()
    return {"file_mb": len(raw) / 1e6, "gzip_mb": len(gzip.compress(raw, compresslevel=6)) / 1e6}


def speed(task_run: TaskRun, items, repeats: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        task_outputs(task_run, items, "cpu")
    return len(items) * repeats / (time.perf_counter() - start)


def prune_run(c: PruneConfig) -> dict:
    """Prune (and optionally re-fine-tune) a task run into `c.out`; the before/after rows."""
    run, out = Path(c.run), Path(c.out)
    if (out / RUN_CONFIG).exists() and not c.overwrite:
        raise InputError(f"{out}: already holds a run; choose another --out, or pass --overwrite.")
    task_run = load_task_run(run, verb="prune")
    if task_run.baseline:
        raise InputError(f"{run}: a {task_run.run.family} baseline has no weights to prune; prune a neural task run.")
    headline = task_run.task.headline
    items = task_run.task.read_eval(task_run.run.contract.corpus, task_run.fields, "valid")
    rows = {"before": {**headline(evaluate_task_run(run)), **weight_stats(task_run.model),
                       **file_sizes(run / "model.safetensors"), "examples_per_s": speed(task_run, items)}}
    magnitude_prune(task_run.model, c.sparsity, c.per_layer)
    _write_pruned(task_run, run, out, c)
    if c.retrain_epochs > 0:
        rows["after_pruning"] = {**headline(evaluate_task_run(out)), **weight_stats(task_run.model)}
        handles = keep_zeros(task_run.model)
        rows["retraining"] = train_further(task_run, out, c.retrain_epochs, c.retrain_lr)
        for handle in handles:
            handle.remove()
    pruned = load_task_run(out, verb="prune")
    rows["after"] = {**headline(evaluate_task_run(out)), **weight_stats(pruned.model),
                     **file_sizes(out / "model.safetensors"), "examples_per_s": speed(pruned, items)}
    if c.int8:
        pruned.model = quantize_int8(pruned.model)
        report = pruned.task.report(items, task_outputs(pruned, items, "cpu"), pruned.labels, pruned.multi_label)
        rows["after_int8"] = {**headline(report), "examples_per_s": speed(pruned, items)}
    return {"run": str(run), "out": str(out), "sparsity": c.sparsity, "per_layer": c.per_layer, **rows}


def _write_pruned(task_run: TaskRun, run: Path, out: Path, c: PruneConfig) -> None:
    """The pruned run: the original's tokenizer and sections, the pruned weights, a [pruning] section."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run / "tokenizer.json", out / "tokenizer.json")
    save_weights(task_run.model, out / "model.safetensors")
    source = open_run(run)
    contract = source.contract
    contract.init_from = str(run)
    pruning = {**source.raw("pruning"), "sparsity": c.sparsity, "per_layer": c.per_layer,
               "retrain_epochs": c.retrain_epochs}
    write_run(out, contract, {**source.sections, "pruning": pruning})
