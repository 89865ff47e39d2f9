"""Magnitude pruning of a fine-tuned task model, and the before/after report: the metric on the valid
split, parameters, non-zero weights, file size (raw and gzip-compressed: safetensors stores zeros
densely, so only compression shows the saving) and examples/s, with an int8 (dynamic quantization)
row for CPU inference. A short re-fine-tuning (`retrain_epochs`) can win back what pruning cost: the
pruned weights get zero gradients, so AdamW (whose moments then stay zero) never moves them."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

from torch import nn
from torch.nn.utils import prune

from lmforge.applications.tasks import TaskRun, evaluate_task_run, load_task_run, run_outputs, train_further
from lmforge.errors import InputError
from lmforge.inference.quantize import quantize_int8
from lmforge.runs import RUN_CONFIG, atomic_write_text, read_run_config, save_weights


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
        run_outputs(task_run, items, "cpu")
    return len(items) * repeats / (time.perf_counter() - start)


def headline(report: dict) -> dict:
    keys = ("accuracy", "macro_f1", "token_accuracy")
    out = {k: report[k] for k in keys if k in report}
    if "segmentation" in report:
        out["word_f1"] = report["segmentation"]["f1"]
    return out


def prune_run(run: Path, out: Path, sparsity: float, per_layer: bool = False, int8: bool = True,
              overwrite: bool = False, retrain_epochs: float = 0.0, retrain_lr: float = 1e-4) -> dict:
    if not 0 <= sparsity < 1:
        raise InputError(f"--sparsity {sparsity}: must be in [0, 1) (the share of Linear weights set to zero).")
    if retrain_epochs < 0 or retrain_lr <= 0:
        raise InputError("--retrain-epochs must be 0 or more and --retrain-lr positive.")
    run, out = Path(run), Path(out)
    if (out / RUN_CONFIG).exists() and not overwrite:
        raise InputError(f"{out}: already holds a run; choose another --out, or pass --overwrite.")
    task_run = load_task_run(run)
    if task_run.baseline:
        raise InputError(f"{run}: a {task_run.run.family} baseline has no weights to prune; prune a neural task run.")
    from lmforge.tasks.reading import read_eval_examples

    items = read_eval_examples(task_run.run.corpus, task_run.fields, "valid")
    rows = {"before": {**headline(evaluate_task_run(run)), **weight_stats(task_run.model),
                       **file_sizes(run / "model.safetensors"), "examples_per_s": speed(task_run, items)}}
    magnitude_prune(task_run.model, sparsity, per_layer)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", RUN_CONFIG):
        shutil.copyfile(run / name, out / name)
    save_weights(task_run.model, out / "model.safetensors")
    config = read_run_config(out)
    config["run"]["init_from"] = str(run)
    config.setdefault("pruning", {}).update({"sparsity": sparsity, "per_layer": per_layer,
                                             "retrain_epochs": retrain_epochs})
    from lmforge.config import to_toml

    atomic_write_text(out / RUN_CONFIG, to_toml(config))
    if retrain_epochs > 0:
        rows["after_pruning"] = {**headline(evaluate_task_run(out)), **weight_stats(task_run.model)}
        handles = keep_zeros(task_run.model)
        rows["retraining"] = train_further(task_run, out, retrain_epochs, retrain_lr)
        for handle in handles:
            handle.remove()
    pruned = load_task_run(out)
    rows["after"] = {**headline(evaluate_task_run(out)), **weight_stats(pruned.model),
                     **file_sizes(out / "model.safetensors"), "examples_per_s": speed(pruned, items)}
    if int8:
        pruned.model = quantize_int8(pruned.model)
        outputs_report = headline(_report_of(pruned, items))
        rows["after_int8"] = {**outputs_report, "examples_per_s": speed(pruned, items)}
    return {"run": str(run), "out": str(out), "sparsity": sparsity, "per_layer": per_layer, **rows}


def _report_of(task_run: TaskRun, items) -> dict:
    """The headline metric of an in-memory (e.g. quantized) model on `items`."""
    import numpy as np

    from lmforge.evaluation.task_report import classify_report, segment_report, tag_report

    outputs = run_outputs(task_run, items, "cpu")
    if task_run.fields.task == "segment":
        return segment_report(items, outputs)
    if task_run.fields.tagging:
        return tag_report([s.tags for s in items], outputs)
    gold, _ = task_run.labels.ids([e.label for e in items])
    return classify_report(np.stack(outputs), gold, task_run.labels.names)
