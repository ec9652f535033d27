"""Heavy routes (explain, large CSV batches): a row cap, a deadline, a stop when the client
leaves or the server shuts down, and a cap on how many run at once in a worker process.

`Heavy.run` does the work in a worker thread, in chunks of rows (`Job.map`). Between chunks it
checks one flag, set when the client disconnected (polled from the event loop), the deadline
passed, the request task was cancelled (uvicorn's graceful-shutdown timeout) or the server is
stopping (SIGTERM/SIGINT, see `watch_signals`). A thread cannot be interrupted inside a chunk, so
a stop takes at most one chunk; chunks are sized to take well under a second.

Answers (all ``{"error": ...}``):

- more rows than the route's cap: 413, naming the cap and the option that raises it;
- every heavy slot of this worker busy: 503 with ``Retry-After``, at once (not queued: a queued
  request would spend its deadline waiting);
- the deadline passed: 503, naming the deadline and how many rows were done (send fewer);
- the server is shutting down, or the client left: 503 (nobody may be listening).
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from shipml.errors import HeavyStopped, TooManyRows

__all__ = ["Heavy", "HeavyStopped", "Job", "TooManyRows"]

log = logging.getLogger("shipml.serve")
T = TypeVar("T")


class Heavy:
    """At most `slots` heavy requests at once, each stopped after `timeout_s` seconds.

    `clock` (monotonic seconds) and `poll_s` (how often the loop looks for a disconnect) are
    injectable for tests; `stopping` is set at shutdown and stops all work after its chunk.
    """

    def __init__(
        self,
        slots: int = 2,
        timeout_s: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 0.05,
    ):
        if int(slots) != slots or slots < 1:
            raise ValueError(f"heavy slots must be a whole number >= 1, not {slots!r}")
        if not timeout_s > 0:
            raise ValueError(f"the heavy-request timeout must be > 0 s, not {timeout_s!r}")
        self.slots, self.timeout_s = int(slots), float(timeout_s)
        self.clock, self.poll_s = clock, poll_s
        self.stopping = threading.Event()
        self._busy = 0
        self._lock = threading.Lock()

    @staticmethod
    def check_rows(n: int, cap: int, what: str, option: str) -> None:
        """TooManyRows unless `n` <= `cap`."""
        if n > cap:
            raise TooManyRows(
                f"{what} takes at most {cap:,} rows per request, got {n:,}: send them in "
                f"batches of {cap:,} or fewer (the server's limit is set by {option})"
            )

    async def run(self, request, work: Callable[[Job], T]) -> T:
        """`work(job)` in a worker thread; it does its rows through ``job.map`` (or calls
        ``job.checkpoint()`` between steps). HeavyStopped when it cannot finish.

        `request` needs ``await request.is_disconnected()`` (a Starlette Request), or None."""
        if not self._acquire():
            raise HeavyStopped(
                f"this server is already running {self.slots} heavy request(s) (explain, large "
                "CSV batches): retry shortly",
                {"Retry-After": str(max(1, math.ceil(min(self.timeout_s, 5.0))))},
            )
        job = Job(self.clock() + self.timeout_s, self.clock, self.stopping)
        try:
            future = asyncio.get_running_loop().run_in_executor(None, job.run, work)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _: self._release())  # the slot is free when the thread is
        try:
            while not future.done():
                await asyncio.wait({future}, timeout=self.poll_s)
                if not future.done() and request is not None and await request.is_disconnected():
                    job.stop("the client disconnected")
        except BaseException:  # cancelled: uvicorn's graceful shutdown ran out of time
            job.stop("the server is shutting down")
            raise
        result = future.result()
        if job.reason is not None:
            raise HeavyStopped(job.message(self.timeout_s))
        return result

    def watch_signals(self) -> None:
        """Set `stopping` on SIGTERM/SIGINT, then call the handler already installed (uvicorn's),
        so heavy work ends within a chunk instead of holding the shutdown. Main thread only."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            def handler(signum, frame, previous=previous):
                self.stopping.set()
                previous(signum, frame)

            signal.signal(sig, handler)

    def _acquire(self) -> bool:
        with self._lock:
            if self._busy >= self.slots:
                return False
            self._busy += 1
            return True

    def _release(self) -> None:
        with self._lock:
            self._busy -= 1


class _Stop(Exception):
    pass


class Job:
    """One heavy request's state, shared by the loop (which may stop it) and its thread."""

    def __init__(self, deadline: float, clock: Callable[[], float], stopping: threading.Event):
        self.deadline, self.clock, self.stopping = deadline, clock, stopping
        self.cancel = threading.Event()
        self.reason: str | None = None
        self.done = self.total = 0

    def stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.cancel.set()

    def checkpoint(self) -> None:
        """Raise (ending the work) if the request must stop."""
        if self.stopping.is_set():
            self.stop("the server is shutting down")
        elif self.clock() >= self.deadline:
            self.stop("deadline")
        if self.cancel.is_set():
            raise _Stop

    def map(self, rows: list, work: Callable[[list], list], chunk: int) -> list:
        """work(part) for consecutive parts of `chunk` rows, concatenated; checks in between."""
        self.total += len(rows)
        out: list = []
        for start in range(0, len(rows), max(1, int(chunk))):
            self.checkpoint()
            part = rows[start : start + max(1, int(chunk))]
            out.extend(work(part))
            self.done += len(part)
        return out

    def run(self, work):
        try:
            return work(self)
        except _Stop:
            log.info("heavy request stopped after %d of %d rows: %s",
                     self.done, self.total, self.reason)  # fmt: skip
            return None

    def message(self, timeout_s: float) -> str:
        where = f"after {self.done:,} of {self.total:,} rows"
        if self.reason == "deadline":
            return (
                f"stopped {where}: a heavy request may take at most {timeout_s:g} s here "
                "(shipml serve --heavy-timeout); send fewer rows per request"
            )
        return f"stopped {where}: {self.reason}"
