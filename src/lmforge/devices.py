"""Where a model runs and at what precision: the device a user asked for (or the best one here) and the
autocast dtype that suits it (bf16 on CUDA; fp32 on a CPU, whose fast path it is)."""

from __future__ import annotations

import torch

from lmforge.errors import InputError


def available_devices() -> list[str]:
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    return names


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def pick_device(preference: str = "auto") -> torch.device:
    """cuda > mps > cpu unless the user named one; a device this installation lacks is an input error."""
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    have = ", ".join(available_devices())
    try:
        device = torch.device(preference)
    except RuntimeError:
        raise InputError(f"--device {preference!r}: not a device name; this installation has {have} "
                         "(or use auto).") from None
    usable = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": _mps_available()}
    if not usable.get(device.type, False) or (device.type == "cuda" and device.index is not None
                                              and device.index >= torch.cuda.device_count()):
        no_cuda = device.type == "cuda" and not torch.cuda.is_available()
        build = " (this PyTorch build has no CUDA support)" if no_cuda else ""
        raise InputError(f"--device {preference}: not available here{build}; this installation has {have} "
                         "(or use auto).")
    return device


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA; None (plain fp32) elsewhere: a CPU without bf16 units is fastest in fp32."""
    return torch.bfloat16 if device.type == "cuda" else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """The autocast context for `dtype` (a no-op when it is None)."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
