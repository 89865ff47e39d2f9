"""Run directories: what kind of run a directory holds, its config.toml read and checked in one place
(`open_run`) and written in one place (`write_run`).

A run's config.toml has a [run] section (format version, kind, family, objective, task), a [data]
section (what it was trained on) and sections of the kind's own ([model], [train], [head], [task],
[masked_lm], [finetune], [pruning]). Every kind of run is a row of `RUN_KINDS`, which says what it
is and which verbs serve it; the verbs open runs with `open_run(path).require(verb, kinds)`, so a run
given to a verb that does not serve it is refused in one line that names the verb to use."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmforge.artifacts import atomic_write_text
from lmforge.errors import InputError

RUN_CONFIG = "config.toml"
INTERRUPTED = "interrupted.json"   # a run stopped before its budget ended ({step, resume}); gone when it finishes
TARGET_TOKENIZER = "tokenizer.tgt.json"   # a translation run's target-side tokenizer (tokenizer.json: the source's)
RUN_FORMAT_VERSION = 2
# version 1 (the GPT-only spine) wrote [run] model = "gpt"; it is read as family gpt, objective causal_lm.
# Version 2 runs written before run kinds lack [run] kind (it is derived) and keep the masked-LM and
# fine-tuning fields in [train] (they are moved to [masked_lm] and [finetune] on reading).


@dataclass(frozen=True)
class RunKind:
    name: str
    what: str
    """How a message names such a run ("a language-model run")."""
    verbs: tuple[str, ...]
    """The verbs that serve it, the one to suggest first."""
    weights: str
    """The file that holds what it learned."""


RUN_KINDS: dict[str, RunKind] = {kind.name: kind for kind in [
    RunKind("lm", "a language-model run", ("generate", "eval", "compare", "summary", "finetune --init",
                                             "train --resume"), "model.safetensors"),
    RunKind("task", "a fine-tuned task run", ("predict", "eval", "prune"), "model.safetensors"),
    RunKind("baseline", "a classical baseline task run", ("predict", "eval"), "baseline.json"),
    RunKind("ngram", "an n-gram run", ("generate", "eval", "compare", "ngram score", "ngram export"),
            "ngram.safetensors"),
    RunKind("seq2seq", "a translation run", ("translate", "eval", "compare", "summary", "train --resume"),
            "model.safetensors"),
    RunKind("embeddings", "a word-vector run", ("embed neighbours", "embed eval", "embed export", "embed plot",
                                                 "finetune --init-embeddings"), "vectors.safetensors"),
]}
COUNTING_OBJECTIVES = {"counts": "ngram", "embeddings": "embeddings"}


@dataclass
class RunConfig:
    """The [run] and [data] sections of config.toml: what a run is."""

    family: str
    """Model family (a key of models/registry.py), a baseline's name, ngram, word2vec or glove."""
    preset: str
    objective: str
    """Training objective (causal_lm, recurrent_lm, masked_lm, classify, ...; counts, embeddings)."""
    shards: str
    """Token shard directory it was trained on (pair shards for a translation run)."""
    tokenizer_sha256: str
    task: str | None = None
    """Fine-tuning task, if any."""
    labels: list[str] | None = None
    """Label names of a classification or tagging task, in head order."""
    init_from: str | None = None
    """Run directory whose weights this run started from."""
    corpus: str | None = None
    """Prepared dataset (or text file) a counting model (n-gram, embeddings) or a task was built from."""
    kind: str | None = None
    """A key of RUN_KINDS (derived from the other fields for runs that predate it)."""

    def sections(self) -> dict[str, dict]:
        run = {"format": "lmforge.run", "version": RUN_FORMAT_VERSION, "kind": self.kind, "family": self.family,
               "preset": self.preset, "objective": self.objective, "task": self.task, "labels": self.labels,
               "init_from": self.init_from}
        data = {"shards": self.shards, "tokenizer_sha256": self.tokenizer_sha256}
        if self.corpus is not None:
            data["corpus"] = self.corpus
        return {"run": run, "data": data}


@dataclass
class Run:
    """An opened run directory: its kind, its [run]/[data] contract and every other section."""

    path: Path
    contract: RunConfig
    sections: dict[str, dict] = field(default_factory=dict)

    @property
    def kind(self) -> RunKind:
        return RUN_KINDS[self.contract.kind]

    @property
    def family(self) -> str:
        return self.contract.family

    @property
    def config_path(self) -> Path:
        return self.path / RUN_CONFIG

    @property
    def weights_path(self) -> Path:
        return self.path / self.kind.weights

    @property
    def tokenizer_path(self) -> Path | None:
        path = self.path / "tokenizer.json"
        return path if path.exists() else None

    @property
    def interrupted(self) -> dict | None:
        """{step, resume command} of a run stopped before its budget ended (None for a finished run)."""
        import json

        path = self.path / INTERRUPTED
        try:
            return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        except (OSError, ValueError):
            return {"step": "?", "resume": "its training command with --resume"}

    def warn_if_interrupted(self, verb: str) -> None:
        """One stderr line when `verb` is about to use the weights of an unfinished run."""
        import sys

        stopped = self.interrupted
        if stopped:
            print(f"lmforge: warning: {self.path} was interrupted at step {stopped['step']}: {verb} uses the weights "
                  f"it had then; finish it with `{stopped['resume']}`", file=sys.stderr)

    def raw(self, name: str) -> dict:
        """A section as written (an empty dict when the run has none)."""
        return dict(self.sections.get(name, {}))

    def section(self, name: str, cls: type, *overrides: dict):
        """Section `name` as the dataclass `cls` (with `overrides` on top); a bad value is one line naming
        the file and the section."""
        from lmforge.config import build_config

        return build_config(cls, self.raw(name), *overrides, source=f"{self.config_path} [{name}]")

    def require(self, verb: str, *kinds: str) -> Run:
        """This run, if `lmforge verb` serves its kind; else a one-line error naming the verbs that do."""
        if self.contract.kind in kinds:
            return self
        wanted = " or ".join(RUN_KINDS[k].what for k in kinds)
        first, *others = self.kind.verbs
        raise InputError(f"{self.path}: {self.kind.what} ({self.family}), not {wanted}, which `lmforge {verb}` "
                         f"needs. Use `lmforge {first}` on it (also: {', '.join(others)}).")


def _kind_of(run: dict, path: Path) -> str:
    """The kind of a [run] section; runs written before kinds were recorded are told apart by it."""
    if run.get("kind"):
        if run["kind"] not in RUN_KINDS:
            raise InputError(f"{path}: unknown run kind {run['kind']!r}; this lmforge knows {', '.join(RUN_KINDS)}.")
        return run["kind"]
    if run.get("objective") in COUNTING_OBJECTIVES:
        return COUNTING_OBJECTIVES[run["objective"]]
    if run.get("task"):
        return "baseline" if (path.parent / "baseline.json").exists() else "task"
    return "lm"


def _contract(run: dict, data: dict, path: Path) -> RunConfig:
    version = run.get("version", 1)
    if version > RUN_FORMAT_VERSION:
        raise InputError(f"{path}: run format version {version} is newer than this lmforge understands "
                         f"({RUN_FORMAT_VERSION}); upgrade lmforge.")
    if "shards" not in data:
        raise InputError(f"{path}: no [data] shards entry; the run directory is damaged, train it again.")
    if version == 1:
        return RunConfig(run.get("model", "gpt"), run.get("preset", ""), "causal_lm", data["shards"],
                         data.get("tokenizer_sha256", ""), kind="lm")
    try:
        return RunConfig(run["family"], run.get("preset", ""), run["objective"], data["shards"],
                         data.get("tokenizer_sha256", ""), run.get("task"), run.get("labels"), run.get("init_from"),
                         data.get("corpus"), _kind_of(run, path))
    except KeyError as missing:
        raise InputError(f"{path}: [run] has no {missing} entry; the run directory is damaged.") from None


MOVED_FIELDS = {"masked_lm": ("mask_rate", "whole_word_mask"), "finetune": ("patience", "layer_decay")}


def _upgrade(sections: dict[str, dict], contract: RunConfig) -> dict[str, dict]:
    """Sections of a run written before objectives had their own: [train] fields that belong to the masked-LM
    objective or to fine-tuning move to their section (those of another objective are dropped)."""
    train = dict(sections.get("train", {}))
    for section, names in MOVED_FIELDS.items():
        moved = {name: train.pop(name) for name in names if name in train}
        wanted = contract.objective == "masked_lm" if section == "masked_lm" else contract.kind == "task"
        if moved and wanted and section not in sections:
            sections[section] = moved
    if "train" in sections:
        sections["train"] = train
    return sections


def open_run(path: Path) -> Run:
    """The run in `path`: a directory that is not a run, a damaged config.toml or a newer format version
    is one line naming the file."""
    from lmforge.config import read_toml

    path = Path(path)
    if not (path / RUN_CONFIG).exists():
        raise InputError(f"{path}: not a run directory (no {RUN_CONFIG}); pass the --out of `lmforge train`, "
                         "`finetune`, `ngram train` or `embed train`.")
    sections = read_toml(path / RUN_CONFIG)
    for name, section in sections.items():
        if not isinstance(section, dict):
            raise InputError(f"{path / RUN_CONFIG}: {name} is not a [section]; the run directory is damaged.")
    contract = _contract(sections.get("run", {}), sections.get("data", {}), path / RUN_CONFIG)
    return Run(path, contract, _upgrade({k: v for k, v in sections.items() if k not in ("run", "data")}, contract))


def clear_run(out: Path) -> None:
    """--overwrite: the run in `out` goes entirely (checkpoints, plots, reports), so nothing of it is mixed
    with the new one; a folder that holds no run is left alone."""
    import shutil

    if (Path(out) / RUN_CONFIG).exists():
        shutil.rmtree(out)


def source_path(source) -> str:
    """How a run records the data it came from: an absolute path (so eval finds it from any directory),
    or a hub id (`hf:...`) as given."""
    text = str(source)
    return text if text.startswith("hf:") else str(Path(text).resolve())


def write_run(out: Path, contract: RunConfig, sections: dict[str, Any]) -> None:
    """Write config.toml: [run], then the kind's sections in order (dataclasses or dicts; None values are
    left out), then [data]. Atomic; under torchrun only rank 0 writes."""
    from lmforge.config import to_toml

    if int(os.environ.get("RANK", "0")) != 0:
        return
    if contract.kind not in RUN_KINDS:
        raise ValueError(f"a run of kind {contract.kind!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fixed = contract.sections()
    atomic_write_text(out / RUN_CONFIG, to_toml({"run": fixed["run"], **sections, "data": fixed["data"]}))
