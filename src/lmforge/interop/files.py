"""An export's output: files written into a hidden sibling folder, then moved into place in one rename,
so a failed export leaves nothing half-written and an existing folder is never mixed with a new one."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from lmforge.errors import InputError

RECORD = "lmforge_export.json"   # what was exported, from which run, and how it was verified


def refuse_existing(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite and (out.is_file() or any(out.iterdir())):
        raise InputError(f"{out}: already exists; pass --overwrite to replace it, or choose another --out.")


@contextmanager
def staged(out: Path, overwrite: bool, directory: bool = True):
    """Yield a temporary path (a folder, or a file path) that becomes `out` when the block succeeds."""
    out = Path(out)
    refuse_existing(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    _remove(tmp)
    if directory:
        tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    _remove(out)
    os.replace(tmp, out)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
