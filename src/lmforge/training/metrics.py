"""metrics.jsonl (one JSON object per logged step) and loss.png (train and val curves)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from pathlib import Path

import torch

from lmforge.artifacts import atomic_write_bytes
from lmforge.errors import InputError
from lmforge.evaluation.plots import save_figure
from lmforge.training.threads import competing_cores


class MetricsLog:
    """metrics.jsonl always; TensorBoard event files in RUN/tensorboard/ when asked."""

    def __init__(self, run_dir: Path, resume_step: int | None = None, tensorboard: bool = False):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.plot_path = Path(run_dir) / "loss.png"
        self.board = _tensorboard_writer(Path(run_dir) / "tensorboard", resume_step) if tensorboard else None
        if resume_step is not None and self.path.exists():
            # drop what was logged after the checkpoint we resume from: it will be redone
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= resume_step]
            kept.append(json.dumps({"step": resume_step, "resumed": True, "time": round(time.time(), 3)}))
            atomic_write_bytes(self.path, ("\n".join(kept) + "\n").encode())
        elif resume_step is None:
            self.path.unlink(missing_ok=True)

    def write(self, record: dict) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps({**record, "time": round(time.time(), 3)}) + "\n")
        if self.board is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.board.add_scalar(key if key.startswith("val") else f"train/{key}", value, record["step"])
            self.board.flush()

    def close(self) -> None:
        if self.board is not None:
            self.board.close()

    def records(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def plot(self) -> None:
        """Every logged train loss (thin) and its moving average, validation, the learning rate on a
        second axis, and a dashed line at each resume."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        records = self.records()
        train = [(r["step"], r["loss"]) for r in records if "loss" in r]
        val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
        if train:
            steps, losses = zip(*train)
            ax.plot(steps, losses, linewidth=0.6, alpha=0.35, color="tab:blue")
            # a trailing average over a 25th of the points: smooth on long runs, little lag on short ones
            ax.plot(steps, _moving_average(losses, max(1, len(losses) // 25)), linewidth=1.2, color="tab:blue",
                    label="train")
        if val:
            ax.plot(*zip(*val), "o-", label="val (sample spread over the split; eval reads it all)", linewidth=1.5,
                    markersize=3, color="tab:orange")
        for r in records:
            if r.get("resumed"):
                ax.axvline(r["step"], color="gray", linestyle="--", linewidth=0.8)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/token)")
        ax.grid(alpha=0.3)
        lrs = [(r["step"], r["lr"]) for r in records if "lr" in r]
        if lrs:
            lr_axis = ax.twinx()
            lr_axis.plot(*zip(*lrs), color="tab:green", linewidth=0.8, alpha=0.7, label="learning rate")
            lr_axis.set_ylabel("learning rate", color="tab:green")
        ax.legend(loc="upper right")
        save_figure(fig, self.plot_path)


def _moving_average(values, window: int) -> list[float]:
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _tensorboard_writer(directory: Path, resume_step: int | None):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise InputError("--log tensorboard needs the tensorboard package: pip install 'lmforge[tensorboard]' "
                         "(or drop --log; metrics.jsonl is always written).") from None
    # on resume, TensorBoard drops the events after the resumed step (they are redone)
    return SummaryWriter(str(directory), purge_step=resume_step + 1 if resume_step is not None else None)


_PEAK_CACHE: dict[str, float] = {}
GPU_BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "4090": 165e12}


def peak_flops(device: torch.device) -> float | None:
    """Peak FLOP/s for MFU: the datasheet bf16 figure on known GPUs; on CPU a fp32 matmul measured once
    when the machine was idle (cached per CPU and thread count)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return next((peak for key, peak in GPU_BF16_PEAK.items() if key in name), None)
    if device.type != "cpu":
        return None
    threads = torch.get_num_threads()
    key = f"cpu:{platform.processor() or platform.machine()}:{os.cpu_count()}:{threads}threads"
    if key not in _PEAK_CACHE:
        _PEAK_CACHE[key] = _cached_cpu_peak(key)
    return _PEAK_CACHE[key]


def _peak_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lmforge" / "cpu_peak.json"


def _cached_cpu_peak(key: str) -> float:
    """The fp32 matmul peak of this CPU at this thread count, measured once on an idle machine and
    kept in ~/.cache/lmforge/cpu_peak.json: measured under load it would make MFU swing (18%-70% was
    seen for one run), so a measurement taken while other processes were busy is used but not kept."""
    path = _peak_file()
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if isinstance(known.get(key), (int, float)):
        return float(known[key])
    busy = competing_cores(window=0.1)
    peak = _measure_matmul_peak()
    if busy < 0.3:
        with contextlib.suppress(OSError):  # a read-only home: measure again next time
            atomic_write_bytes(path, json.dumps({**known, key: peak}, indent=1).encode())
    return peak


def _measure_matmul_peak() -> float:
    # its own generator: drawing from the global one would shift the dropout masks of a resumed run
    # 2048 x 2048: large enough for the BLAS to reach its peak (1024 read ~10% low, so fused
    # recurrent kernels showed an MFU above 100%); measured once per machine, so the second is paid once
    generator = torch.Generator().manual_seed(0)
    size = 2048
    a, b = torch.randn(size, size, generator=generator), torch.randn(size, size, generator=generator)
    for _ in range(2):
        a @ b
    start, n = time.perf_counter(), 5
    for _ in range(n):
        a @ b
    return 2 * size**3 * n / (time.perf_counter() - start)
