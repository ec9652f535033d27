"""Heavy imports, done on first use with the thread settings that keep 2 shared cores fast."""

from __future__ import annotations

import os


def lightgbm():
    """Import LightGBM after telling OpenMP not to spin (spinning threads made training and
    prediction 8-15x slower when another process shared the two cores)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import lightgbm as lgb

    return lgb


def n_threads() -> int:
    """Threads for training: the cores we have (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
