"""Run and artifact directories: atomic writes, JSON metadata, safetensors weights."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lmforge.errors import InputError


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


RUN_CONFIG = "config.toml"


def save_weights(model, path: Path) -> None:
    """safetensors, atomically; tied weights are stored once (safetensors' save_model dedups them)."""
    from safetensors.torch import save_model

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    save_model(model, str(tmp), metadata={"format": "lmforge.weights"})
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
        raise InputError(f"{path}: weights do not match the model described in {RUN_CONFIG} ({first}).") from None


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The resolved config.toml of a run: {"model": {...}, "train": {...}, "data": {...}}."""
    from lmforge.config import read_toml

    run_dir = Path(run_dir)
    if not (run_dir / RUN_CONFIG).exists():
        raise InputError(f"{run_dir}: not a run directory (no {RUN_CONFIG}); pass the --out of `lmforge train`.")
    return read_toml(run_dir / RUN_CONFIG)


def write_run_dir(out: Path, *, family: str, preset: str, model_config, train_config, shards: Path,
                  tokenizer_sha256: str, tokenizer_file: Path) -> None:
    """Create a run directory: the fully resolved config.toml and a copy of the tokenizer, before training.
    Under torchrun only rank 0 writes."""
    import shutil

    from lmforge.config import to_toml

    if int(os.environ.get("RANK", "0")) != 0:
        return
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tokenizer_file, out / "tokenizer.json")
    atomic_write_text(out / RUN_CONFIG, to_toml({
        "run": {"model": family, "preset": preset, "format": "lmforge.run", "version": 1},
        "model": model_config, "train": train_config,
        "data": {"shards": str(Path(shards).resolve()), "tokenizer_sha256": tokenizer_sha256}}))
