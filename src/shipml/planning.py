"""The time plan of one `train` call: the budget is the wall clock of the whole call.

Every step that runs after the search is costed before the search starts and kept back from
it (`reserve`): ensembling, importance, report and registration from the table's size; the
refit of holdout-validated models from the measured fit time of the best candidates (updated
as the search finds them); the int8 ONNX check of a text encoder and the copy of its weights
from their size and the encoder's measured speed. The search's deadline is the end of the
budget minus what is still reserved, read live (`search_budget`), so it moves when an estimate
does. An optional step that does not fit (the int8 check) is skipped and said so.

The clock is injectable (`clock=`): tests drive the plan with a fake clock, exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shipml.learners.base import Budget

__all__ = [
    "TimePlan",
    "PlanBudget",
    "post_search_seconds",
    "refit_seconds",
    "runtime_check_seconds",
    "write_seconds",
    "plan_text_steps",
    "runtime_skip",
    "RUNTIME_SHARE",
    "plan_finish",
    "plan_refit",
    "baseline_budget",
    "importance_rows",
]

# Measured on a 2-core machine with other jobs running (about 2x slowdown; all-MiniLM-L6-v2,
# 91 MB of weights): export 4.2 s + quantization 12.2 s; serializing, writing, hashing and
# fsyncing its weights 0.8 s. The constants are per unloaded core; `TimePlan.slowdown` scales.
_ONNX_S_PER_MB = 0.09  # export to ONNX + int8 quantization, per MB of encoder weights
_WRITE_S_PER_MB = 0.01  # serialize + write + sha256 + fsync, per MB stored
_MAX_SLOWDOWN = 4.0
_SPEED_TEXTS = 2 * (256 + 8)  # texts the int8 check encodes to measure both runtimes' speed
_REFIT_GROWTH = 1.5  # a refit on all rows (1.25x rows, 1.15x rounds) vs its holdout fit
_REFIT_MEMBERS = 3  # the ensemble members a refit reserve covers (heaviest first)
RUNTIME_SHARE = 0.35  # the int8 check runs when its estimate is at most this share of the budget
_REFIT_SHARE = 0.15  # of the budget, for retraining holdout-validated models on all rows
_BASELINE_SHARE = 0.25  # of the search time, for the TF-IDF baseline next to sentence embeddings
_FINISH_AFTER_IMPORTANCE = 0.7  # of the post-search estimate: reference, report, registry


def plan_finish(plan: TimePlan, n_rows: int, n_features: int, registering: bool) -> None:
    """Keep back what ensembling, importance, the report and the registry will take, at the
    machine's current speed (measured now: reading and encoding ran single-threaded)."""
    slowdown = plan.measure_slowdown()
    seconds = post_search_seconds(plan.budget_s, n_rows, n_features, registering, slowdown)
    plan.reserve("finish", seconds)


def plan_refit(plan: TimePlan, holdout: bool, tuned: bool) -> float:
    """A holdout-validated model trained on 80% of the rows; keep time to retrain the chosen
    ones on all rows (k-fold models already saw every row across their folds). A tuned text
    encoder learned from the training rows only, so its heads are not refitted. The search
    re-estimates this reserve from the fit times of its best candidates (`refit_seconds`).
    Returns the cap (0: no refit)."""
    cap = _REFIT_SHARE * plan.budget_s if holdout and not tuned else 0.0
    if cap:
        plan.reserve("refit", cap)
    return cap


def baseline_budget(plan: TimePlan, tuned: bool) -> Budget:
    """The TF-IDF baseline's share of the search time left (half when the encoder was tuned)."""
    now, deadline = plan.clock(), plan.deadline()
    share = _BASELINE_SHARE / 2 if tuned else _BASELINE_SHARE
    return Budget(min(deadline, now + share * (deadline - now)), plan.clock)


def importance_rows(plan: TimePlan, n: int, first: int, per_row: float) -> int:
    """How many of `n` rows the importance can take at `per_row` seconds, leaving the steps
    after it (the reference, the report, the registry) their share of the finish estimate."""
    rest = _FINISH_AFTER_IMPORTANCE * plan.estimates.get("finish", 0.0)
    allowed = plan.end - plan.clock() - rest
    return min(n, first + int(max(0.0, allowed) / per_row))


def post_search_seconds(budget_s: float, n_rows: int, n_features: int, report: bool,
                        slowdown: float = 1.0) -> float:  # fmt: skip
    """Ensembling, threshold, metrics, importance, drift reference, the report and the
    registry write, on an unloaded core: a fixed part, the report's plots, and a part growing
    with the table (contributions on a sample, the reference's and the report's columns).
    Measured with the other core busy, house prices (1,168 rows, 79 columns): importance
    1.7 s, reference 1.3 s, report 3.7 s, registry 0.5 s; German credit (1,000 rows, 20
    columns): report and registry 4.9 s (importance is sized to what is left: training.py).
    Times `slowdown`, at most 40% of the budget."""
    size = n_rows / 50_000 + n_features / 40
    plots = (3.5 + n_features / 100) if report else 0.0
    return min(0.4 * budget_s, (0.6 + plots + size) * slowdown)


def refit_seconds(candidates, cap: float) -> float:
    """Retraining the best candidates of families that refit on all rows (learners/registry.py),
    from their measured fit time."""
    from shipml.learners.registry import FAMILIES

    fits = [c.seconds for c in candidates if c.family in FAMILIES and FAMILIES[c.family].refits]
    return min(cap, _REFIT_GROWTH * sum(sorted(fits, reverse=True)[:_REFIT_MEMBERS]))


def runtime_check_seconds(weights_bytes: int, rows: int, per_text_s: float,
                          slowdown: float = 1.0) -> float:  # fmt: skip
    """The int8 ONNX check: export and quantize the encoder (per MB, times `slowdown`), encode
    the validated rows with int8, and both runtimes' throughput on a few hundred texts (at the
    encoder's measured `per_text_s`, which already runs at the machine's current speed)."""
    export = _ONNX_S_PER_MB * weights_bytes / 1e6 * slowdown
    return export + (rows + _SPEED_TEXTS) * per_text_s


def write_seconds(n_bytes: int, slowdown: float = 1.0) -> float:
    """Storing `n_bytes` of model files (the sentence encoder's weights, mostly)."""
    return _WRITE_S_PER_MB * n_bytes / 1e6 * slowdown


def plan_text_steps(plan: TimePlan, weights_bytes: int, rows: int, per_text_s: float) -> float:
    """Plan what a sentence encoder adds after the search: the int8 ONNX check, reserved when
    its estimate is at most RUNTIME_SHARE of the budget (else it runs only if the search leaves
    it the time: `runtime_skip`), and storing the weights (plus the int8 graph, if kept).
    Returns the seconds reserved."""
    check = runtime_check_seconds(weights_bytes, rows, per_text_s, plan.slowdown)
    plan.estimates["runtime"] = check
    if check <= RUNTIME_SHARE * plan.budget_s:
        plan.reserve("runtime", check)
        plan.reserve("write", write_seconds(int(1.7 * weights_bytes), plan.slowdown))
    else:
        plan.reserve("write", write_seconds(weights_bytes, plan.slowdown))
    return plan.reserved.get("runtime", 0.0) + plan.reserved["write"]


def runtime_skip(plan: TimePlan) -> str | None:
    """None when the int8 check fits what is left now (every other reservation kept); else
    the note saying why the model keeps PyTorch (the check is recorded as skipped)."""
    need = plan.estimates.get("runtime", 0.0)
    if plan.fits("runtime", need):
        return None
    left = max(0.0, plan.deadline("runtime") - plan.clock())
    plan.skip("runtime", f"runtime: PyTorch (the int8 ONNX check, about {need:.0f}s, did not "
                         f"fit the {left:.0f}s left of the {plan.budget_s:g}s time budget; a "
                         f"larger --time-budget runs it)")  # fmt: skip
    return plan.skipped["runtime"]


@dataclass
class TimePlan:
    """Deadlines of one training call: `budget_s` seconds from `started` on `clock`."""

    budget_s: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    cpu_clock: Callable[[], float] = field(default=time.process_time, repr=False)
    started: float | None = None
    slowdown: float = 1.0  # wall seconds per CPU second of this process (other jobs running)
    reserved: dict[str, float] = field(default_factory=dict)  # step -> seconds kept back
    spent: dict[str, float] = field(default_factory=dict)  # step -> seconds it took
    skipped: dict[str, str] = field(default_factory=dict)  # step -> why
    estimates: dict[str, float] = field(default_factory=dict)  # step -> projected seconds
    marks: dict[str, float] = field(default_factory=dict)  # event -> seconds since started

    def __post_init__(self) -> None:
        if self.started is None:
            self.started = self.clock()
        self._cpu_started = self.cpu_clock()

    def measure_slowdown(self) -> float:
        """Wall time over this process's CPU time since the start (imports, reading and
        encoding the table: single-threaded work), 1 to 4: how much slower than an unloaded
        core the steps costed per core will run now."""
        cpu = self.cpu_clock() - self._cpu_started
        wall = self.elapsed()
        if cpu > 0.05:
            self.slowdown = float(min(_MAX_SLOWDOWN, max(1.0, wall / cpu)))
        return self.slowdown

    @property
    def end(self) -> float:
        return self.started + self.budget_s

    def elapsed(self) -> float:
        return self.clock() - self.started

    def left(self) -> float:
        return self.end - self.clock()

    def reserve(self, step: str, seconds: float) -> None:
        self.reserved[step] = self.estimates[step] = max(0.0, float(seconds))

    def release(self, step: str) -> None:
        self.reserved.pop(step, None)

    def deadline(self, *steps: str) -> float:
        """The end minus every reservation (except those of `steps`, about to run)."""
        return self.end - sum(s for k, s in self.reserved.items() if k not in steps)

    def budget(self, *steps: str) -> Budget:
        """A fixed Budget up to `deadline(*steps)`."""
        return Budget(self.deadline(*steps), self.clock)

    def search_budget(self) -> PlanBudget:
        """The search's Budget: its deadline follows the reservations as they change."""
        return PlanBudget(self)

    def fits(self, step: str, seconds: float) -> bool:
        """Can `step` take `seconds` now and leave every other reservation whole?"""
        return seconds <= self.deadline(step) - self.clock()

    def skip(self, step: str, why: str) -> None:
        self.release(step)
        self.skipped[step] = why

    def mark(self, event: str, at: float | None = None) -> None:
        """Record `event` at `at` seconds since the start (default: now)."""
        self.marks[event] = round(self.elapsed() if at is None else at, 3)

    def run(self, step: str, fn: Callable[[], object]) -> object:
        """Run `fn` as `step`: its reservation is released, its duration recorded."""
        t0 = self.clock()
        try:
            return fn()
        finally:
            self.release(step)
            self.spent[step] = round(self.clock() - t0, 3)

    def summary(self) -> dict:
        """JSON-able record for the model's lineage."""
        return {
            "budget_s": self.budget_s,
            "slowdown": round(self.slowdown, 2),
            "marks_s": dict(self.marks),
            "steps_s": dict(self.spent),
            "skipped": dict(self.skipped),
            "estimates_s": {k: round(v, 3) for k, v in self.estimates.items()},
        }


class PlanBudget(Budget):
    """A Budget whose deadline is the plan's current one (reservations can move it)."""

    def __init__(self, plan: TimePlan) -> None:  # noqa: D107 - no dataclass init: live deadline
        self.plan = plan
        self.clock = plan.clock

    @property
    def deadline(self) -> float:  # type: ignore[override]
        return self.plan.deadline()
