"""Run and artifact directories: atomic writes, JSON metadata, safetensors weights."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
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


RUN_CONFIG = "config.toml"


def save_weights(model, path: Path) -> None:
    """safetensors, atomically; tied weights are stored once (safetensors' save_model dedups them)."""
    from safetensors.torch import save_model

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
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
        raise InputError(f"{path}: weights do not match the model described in {RUN_CONFIG} ({first}).") from None


RUN_FORMAT_VERSION = 2
# version 1 (the GPT-only spine) wrote [run] model = "gpt"; it is read as family gpt, objective causal_lm


@dataclass
class RunConfig:
    """The [run] and [data] sections of config.toml: what a run is, read and written only here."""

    family: str
    """Model family (a key of models/registry.py)."""
    preset: str
    objective: str
    """Training objective (causal_lm, recurrent_lm, masked_lm, ...)."""
    shards: str
    """Token shard directory it was trained on."""
    tokenizer_sha256: str
    task: str | None = None
    """Fine-tuning task, if any."""
    labels: list[str] | None = None
    """Label names of a classification or tagging task, in head order."""
    init_from: str | None = None
    """Run directory whose weights this run started from."""
    corpus: str | None = None
    """Prepared dataset (or text file) a counting model (n-gram, embeddings) was built from."""

    def sections(self) -> dict[str, dict]:
        run = {"format": "lmforge.run", "version": RUN_FORMAT_VERSION, "family": self.family, "preset": self.preset,
               "objective": self.objective, "task": self.task, "labels": self.labels, "init_from": self.init_from}
        data = {"shards": self.shards, "tokenizer_sha256": self.tokenizer_sha256}
        if self.corpus is not None:
            data["corpus"] = self.corpus
        return {"run": run, "data": data}


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The resolved config.toml of a run: {"run": {...}, "model": {...}, "train": {...}, "data": {...}}."""
    from lmforge.config import read_toml

    run_dir = Path(run_dir)
    if not (run_dir / RUN_CONFIG).exists():
        raise InputError(f"{run_dir}: not a run directory (no {RUN_CONFIG}); pass the --out of `lmforge train`.")
    return read_toml(run_dir / RUN_CONFIG)


def run_contract(config: dict[str, Any], run_dir: Path) -> RunConfig:
    """The validated RunConfig of a config.toml (format versions 1 and 2)."""
    path = Path(run_dir) / RUN_CONFIG
    run, data = config.get("run", {}), config.get("data", {})
    version = run.get("version", 1)
    if version > RUN_FORMAT_VERSION:
        raise InputError(f"{path}: run format version {version} is newer than this lmforge understands "
                         f"({RUN_FORMAT_VERSION}); upgrade lmforge.")
    if "shards" not in data:
        raise InputError(f"{path}: no [data] shards entry; the run directory is damaged, train it again.")
    if version == 1:
        return RunConfig(run.get("model", "gpt"), run.get("preset", ""), "causal_lm", data["shards"],
                         data.get("tokenizer_sha256", ""))
    try:
        return RunConfig(run["family"], run.get("preset", ""), run["objective"], data["shards"],
                         data.get("tokenizer_sha256", ""), run.get("task"), run.get("labels"), run.get("init_from"),
                         data.get("corpus"))
    except KeyError as missing:
        raise InputError(f"{path}: [run] has no {missing} entry; the run directory is damaged.") from None


def source_path(source) -> str:
    """How a run records the data it came from: an absolute path (so eval finds it from any directory),
    or a hub id (`hf:...`) as given."""
    text = str(source)
    return text if text.startswith("hf:") else str(Path(text).resolve())


def write_run_dir(out: Path, run: RunConfig, model_config, train_config, tokenizer_file: Path) -> None:
    """Create a run directory: the fully resolved config.toml and a copy of the tokenizer, before training.
    Under torchrun only rank 0 writes."""
    import shutil

    from lmforge.config import to_toml

    if int(os.environ.get("RANK", "0")) != 0:
        return
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tokenizer_file, out / "tokenizer.json")
    sections = run.sections()
    atomic_write_text(out / RUN_CONFIG, to_toml({"run": sections["run"], "model": model_config,
                                                 "train": train_config, "data": sections["data"]}))
