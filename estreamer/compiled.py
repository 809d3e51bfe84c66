"""The optional C extensions, decided in one place: the layout decoder
(estreamer/protocol/_speedups.c), the decoration plans (estreamer/_namer.c) and the Splunk
writer (estreamer/formats/_splunk.c). Each is built when the project is installed and a C
compiler is there; without it, or with ESTREAMER_PURE_PYTHON=1 in the environment, the
Python it replaces does the same work, slower, with the same results (tests hold the two
to that)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

PURE_PYTHON = bool(os.environ.get("ESTREAMER_PURE_PYTHON"))


def optional(module: str) -> ModuleType | None:
    """The compiled module, or None: it was not built, or ESTREAMER_PURE_PYTHON is set."""
    if PURE_PYTHON:
        return None
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def description(module: str, available: bool, without: str) -> str:
    """Which one runs, for the log line at start; `without` says what is lost when it is not
    built."""
    if available:
        return f"compiled ({module})"
    if PURE_PYTHON:
        return "pure Python (ESTREAMER_PURE_PYTHON is set)"
    return (f"pure Python: the C extension was not built (no C compiler at install time?); "
            f"{without}")
