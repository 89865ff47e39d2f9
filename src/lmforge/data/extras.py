"""Optional dependencies of the data stage (the `data` extra), with an actionable error when absent."""

from __future__ import annotations

import importlib

from lmforge.errors import InputError


def require(module: str, purpose: str):
    """Import `module`, or explain in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"{purpose} needs the {module!r} package: pip install 'lmforge[data]' "
                         "(make test installs it).") from None
