"""Checkpoints: checkpoints/step_N/{model.safetensors, optim.pt, state.json}, written atomically."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lmforge.artifacts import atomic_write_bytes, save_weights
from lmforge.errors import InputError

CHECKPOINT_FORMAT_VERSION = 1
CARRIED = "carried.safetensors"


def staging_folder(directory: Path, step: int) -> Path:
    return Path(directory) / f".step_{step:08d}.tmp"


def stage_checkpoint(directory: Path, step: int) -> Path:
    """An empty staging folder for step N (the shards of an FSDP run are written into it by every rank
    before `save_checkpoint(..., staged=True)` completes and renames it)."""
    tmp = staging_folder(directory, step)
    Path(directory).mkdir(parents=True, exist_ok=True)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def save_checkpoint(directory: Path, step: int, model: nn.Module | dict, optim_state: dict, state: dict,
                    keep: int, carried: dict[str, torch.Tensor] | None = None, staged: bool = False) -> Path:
    """Write into a temp folder, then rename it to step_N; older ones beyond `keep` are removed.
    `model` is a module or its (gathered) state dict; `carried` (recurrent states handed between training
    windows) goes to carried.safetensors; `staged`: the temp folder already holds the sharded state.
    On failure (disk full, permissions) the temp folder is removed and earlier checkpoints stay."""
    final = directory / f"step_{step:08d}"
    tmp = staging_folder(directory, step)
    try:
        if not staged:
            stage_checkpoint(directory, step)
        save_weights(model, tmp / "model.safetensors")
        torch.save(optim_state, tmp / "optim.pt")
        if carried:
            save_file({k: v.contiguous().cpu() for k, v in carried.items()}, str(tmp / CARRIED))
        atomic_write_bytes(tmp / "state.json", json.dumps(
            {"format": "lmforge.checkpoint", "version": CHECKPOINT_FORMAT_VERSION, **state}, indent=2).encode())
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        previous = latest_checkpoint(directory)
        kept = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
        hint = "free some disk space" if error.errno == errno.ENOSPC else "check the permissions"
        raise InputError(f"{tmp}: cannot write checkpoint ({error.strerror or error}); {kept}; "
                         f"{hint} and resume with --resume.") from None
    for old in sorted(directory.glob("step_*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(directory: Path) -> Path | None:
    done = sorted(p for p in Path(directory).glob("step_*") if (p / "state.json").exists())
    return done[-1] if done else None


def load_checkpoint(path: Path) -> tuple[dict, dict]:
    """(optimizer and RNG state, state.json) of a checkpoint folder; nothing is unpickled."""
    optim_state = torch.load(path / "optim.pt", map_location="cpu", weights_only=True)
    state = json.loads((path / "state.json").read_text())
    return optim_state, state


def load_carried(path: Path) -> dict[str, torch.Tensor]:
    """The carried recurrent states of a checkpoint folder ({} when it has none)."""
    return load_file(str(path / CARRIED)) if (path / CARRIED).exists() else {}
