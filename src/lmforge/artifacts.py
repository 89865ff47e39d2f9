"""Artifacts on disk: atomic writes (readers never see half a file), JSON metadata with a format version,
and safetensors weights and arrays (nothing is ever unpickled)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lmforge.errors import InputError


def plain_file_mode(path: Path) -> None:
    """Give a file the mode a plain open() would (0666 less the umask): temp files are created 0600,
    which would leave a shared run directory unreadable to others."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a temp file in the same directory, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        plain_file_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: Path, what: str = "metadata") -> Any:
    """Load a JSON file; a missing or malformed one is an input error naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: {what} file not found; is this the right directory?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: malformed JSON ({error}); the {what} file is damaged, "
                         "recreate it with the stage that wrote it.") from None


def check_format(meta: dict[str, Any], path: Path, kind: str, version: int) -> None:
    """Every artifact carries {"format": "lmforge.<kind>", "version": N}; refuse what we cannot read."""
    if meta.get("format") != f"lmforge.{kind}":
        raise InputError(f"{path}: not an lmforge {kind} file (format={meta.get('format')!r}).")
    if meta.get("version", 0) > version:
        raise InputError(f"{path}: {kind} format version {meta.get('version')} is newer than this "
                         f"lmforge understands ({version}); upgrade lmforge.")


def save_weights(model, path: Path) -> None:
    """safetensors, atomically, of a module or of its state dict (gathered from FSDP shards); tied
    weights are stored once (safetensors' save_model dedups them)."""
    from safetensors.torch import save_file, save_model

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(model, dict):   # names sharing one tensor (a tied head): the first in sorted order, as save_model
        groups: dict[int, list[str]] = {}
        for name, tensor in model.items():
            groups.setdefault(tensor.data_ptr() if tensor.numel() else id(tensor), []).append(name)
        kept = {min(names) for names in groups.values()}
        save_file({name: t.contiguous() for name, t in model.items() if name in kept}, str(tmp),
                  metadata={"format": "lmforge.weights"})
    else:
        save_model(model, str(tmp), metadata={"format": "lmforge.weights"})
    plain_file_mode(tmp)
    os.replace(tmp, path)


def save_arrays(path: Path, arrays: dict, kind: str) -> None:
    """NumPy arrays as safetensors (counting models' tables, word vectors), atomically."""
    import numpy as np
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # safetensors writes an array's buffer as if it were row-major: a Fortran-ordered or strided array
    # (scikit-learn's multi-class coef_, a transposed view) would come back scrambled
    arrays = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    save_file(arrays, str(tmp), metadata={"format": f"lmforge.{kind}", "version": "1"})
    plain_file_mode(tmp)
    os.replace(tmp, path)


def load_weights(model, path: Path) -> None:
    from safetensors.torch import load_model

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: model weights not found; train the run first (lmforge train).")
    try:
        load_model(model, str(path), strict=True)
    except (RuntimeError, KeyError) as error:
        first = str(error).splitlines()[0][:200]
        raise InputError(f"{path}: weights do not match the model described in config.toml ({first}).") from None
