"""metrics.jsonl (one JSON object per logged step) and loss.png (train and val curves)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from lmforge.errors import InputError
from lmforge.evaluation.plots import save_figure
from lmforge.runs import atomic_write_bytes


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
            atomic_write_bytes(self.path, ("\n".join(kept) + "\n" if kept else "").encode())
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
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        records = self.records()
        train = [(r["step"], r["loss"]) for r in records if "loss" in r]
        val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        if train:
            ax.plot(*zip(*train), label="train", linewidth=1)
        if val:
            ax.plot(*zip(*val), "o-", label="val", linewidth=1.5, markersize=3)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/token)")
        ax.grid(alpha=0.3)
        ax.legend()
        save_figure(fig, self.plot_path)


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
    """Peak FLOP/s for MFU: the datasheet bf16 figure on known GPUs, a measured fp32 matmul on CPU."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return next((peak for key, peak in GPU_BF16_PEAK.items() if key in name), None)
    if device.type != "cpu":
        return None
    if "cpu" not in _PEAK_CACHE:
        # its own generator: drawing from the global one would shift the dropout masks of a resumed run
        generator = torch.Generator().manual_seed(0)
        a, b = torch.randn(1024, 1024, generator=generator), torch.randn(1024, 1024, generator=generator)
        for _ in range(3):
            a @ b
        start, n = time.perf_counter(), 10
        for _ in range(n):
            a @ b
        _PEAK_CACHE["cpu"] = 2 * 1024**3 * n / (time.perf_counter() - start)
    return _PEAK_CACHE["cpu"]
