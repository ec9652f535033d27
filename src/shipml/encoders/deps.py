"""The optional text stack (PyTorch, transformers, tokenizers, safetensors), imported on first
use with thread settings for small shared CPUs, or a MissingDependency that says how to fix it."""

from __future__ import annotations

import os

from shipml.errors import MissingDependency

__all__ = ["torch", "transformers", "tokenizers", "safetensors_torch", "FIX"]

FIX = 'pip install "shipml[text]"'
_threads_set = False


def _missing(exc: ImportError) -> MissingDependency:
    return MissingDependency(
        f"text models need the text extra ({exc.name or 'a package'} is not installed): {FIX}"
    )


def torch():
    """PyTorch with OpenMP told not to spin and one thread per available core."""
    global _threads_set
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError as exc:
        raise _missing(exc) from exc
    if not _threads_set:
        from shipml._lazy import n_threads

        torch.set_num_threads(min(4, n_threads()))
        _threads_set = True
    return torch


def transformers():
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch()
    try:
        import transformers
    except ImportError as exc:
        raise _missing(exc) from exc
    transformers.utils.logging.disable_progress_bar()
    return transformers


def tokenizers():
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import tokenizers
    except ImportError as exc:
        raise _missing(exc) from exc
    return tokenizers


def safetensors_torch():
    torch()
    try:
        import safetensors.torch as st
    except ImportError as exc:
        raise _missing(exc) from exc
    return st
