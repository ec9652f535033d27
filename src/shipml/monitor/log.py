"""The prediction log and feedback labels, in the registry database.

The server appends one row per predicted record (`PredictionLog.append`, written by a background
thread in batches so that a request never waits on the database). `shipml monitor` and
`shipml retrain` read it back with `read_log`, joined with the labels users sent to
`/v1/feedback` (`add_feedback`).

Row contract (``predictions`` table):
- ``inputs``: the record's feature columns only (the model's schema), as received; columns marked
  PII are already replaced by ``"hmac:<hex>"`` keyed hashes — raw PII never reaches the database.
- ``outputs``: ``{"label": ..., "probabilities": {class: p}}`` or ``{"value": float}``.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading

import pandas as pd
import sqlalchemy as sa

from shipml.errors import DataError, FeedbackError

__all__ = [
    "PredictionLog",
    "FeedbackError",
    "add_feedback",
    "logged_rows",
    "read_log",
    "parse_since",
]

log = logging.getLogger("shipml.monitor")
_BATCH = 500


class PredictionLog:
    """Appends prediction rows from a background thread (batched inserts).

    `append` never blocks on the database; `flush` waits until everything appended so far is
    written (tests and shutdown use it). When the queue is full (the database is down or slow),
    rows are dropped and counted in `dropped`, so serving never stalls on logging.
    """

    def __init__(self, engine: sa.Engine, *, max_queue: int = 100_000, on_drop=None) -> None:
        from shipml.registry import tables

        self.engine = engine
        self._writer = _writer_engine(engine)
        self.on_drop = on_drop  # called with the number of rows dropped
        self.table = tables.predictions
        self.dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="shipml-prediction-log", daemon=True)
        self._thread.start()

    def append(self, rows: list[dict]) -> None:
        for row in rows:
            try:
                self._queue.put_nowait(row)
            except queue.Full:
                self._dropped(1)

    def flush(self, timeout: float = 10.0) -> None:
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return
        done.wait(timeout)

    def _run(self) -> None:
        while True:
            batch, events = [], []
            item = self._queue.get()
            while True:
                (events if isinstance(item, threading.Event) else batch).append(item)
                if len(batch) >= _BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
            for event in events:
                event.set()

    def _write(self, batch: list[dict]) -> None:
        try:
            with self._writer.begin() as conn:
                conn.execute(self.table.insert(), batch)
        except Exception:  # the database is down: count, log once per batch, keep serving
            self._dropped(len(batch))
            log.exception("could not write %d prediction log rows", len(batch))

    def _dropped(self, n: int) -> None:
        self.dropped += n
        if self.on_drop is not None:
            self.on_drop(n)


def _writer_engine(engine: sa.Engine) -> sa.Engine:
    """The log's own connection. On SQLite (in WAL mode) it commits with synchronous=NORMAL:
    no fsync per batch, still never corrupt; a power cut can lose the last moments of the log,
    not the registry (whose own connection keeps full sync)."""
    if engine.dialect.name != "sqlite":
        return engine
    writer = sa.create_engine(engine.url, connect_args={"timeout": 30})

    @sa.event.listens_for(writer, "connect")
    def _pragmas(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return writer


def add_feedback(
    engine: sa.Engine, prediction_id: str, label, *, key_name: str | None, check=None
) -> dict:
    """Store the true label (or value) for a logged prediction; one label per prediction.

    `check(model, version, label)` may normalize the label or raise FeedbackError (the server
    checks it against the model's classes)."""
    from shipml.registry import tables as t

    if not isinstance(prediction_id, str) or not prediction_id:
        raise FeedbackError("prediction_id must be a non-empty string", 422)
    if label is None or isinstance(label, (dict, list)):
        raise FeedbackError("label must be a single value (a class label or a number)", 422)
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(t.predictions.c.model, t.predictions.c.version).where(
                t.predictions.c.id == prediction_id
            )
        ).first()
        if row is None:
            raise FeedbackError(f"no logged prediction has id {prediction_id!r}", 404)
        exists = conn.execute(
            sa.select(t.feedback.c.prediction_id).where(t.feedback.c.prediction_id == prediction_id)
        ).first()
        if exists is not None:
            raise FeedbackError(f"prediction {prediction_id!r} already has feedback", 409)
        if check is not None:
            label = check(row.model, row.version, label)
        conn.execute(
            t.feedback.insert().values(
                prediction_id=prediction_id,
                label=label,
                created_at=dt.datetime.now(dt.timezone.utc),
                key_name=key_name,
            )
        )
    return {"prediction_id": prediction_id, "model": row.model, "version": row.version}


def logged_rows(engine: sa.Engine, model: str, *, since: dt.datetime | None = None,
                until: dt.datetime | None = None, version: int | None = None) -> list:  # fmt: skip
    """The logged predictions of `model` in [since, until), oldest first, each joined with its
    feedback: rows of ``id``, ``version``, ``created_at``, ``inputs``, ``outputs``, ``label``."""
    from shipml.registry import tables as t

    p, f = t.predictions, t.feedback
    query = (
        sa.select(p.c.id, p.c.version, p.c.created_at, p.c.inputs, p.c.outputs, f.c.label)
        .select_from(p.outerjoin(f, f.c.prediction_id == p.c.id))
        .where(p.c.model == model)
        .order_by(p.c.created_at, p.c.id)
    )
    if since is not None:
        query = query.where(p.c.created_at >= since)
    if until is not None:
        query = query.where(p.c.created_at < until)
    if version is not None:
        query = query.where(p.c.version == version)
    with engine.connect() as conn:
        return conn.execute(query).all()


def read_log(
    engine: sa.Engine,
    model: str,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    version: int | None = None,
) -> pd.DataFrame:
    """Logged predictions of `model`, oldest first: one row per prediction.

    Columns: ``id``, ``version``, ``created_at`` (UTC), one column per logged input, then
    ``prediction`` (label or value), ``proba:<class>`` per class, and ``feedback`` (the label
    sent back, or None).
    """
    rows = logged_rows(engine, model, since=since, until=until, version=version)
    records = []
    for row in rows:
        record = {"id": row.id, "version": row.version, "created_at": _utc(row.created_at)}
        record.update(row.inputs or {})
        outputs = row.outputs or {}
        record["prediction"] = outputs.get("label", outputs.get("value"))
        for cls, p_cls in (outputs.get("probabilities") or {}).items():
            record[f"proba:{cls}"] = p_cls
        record["feedback"] = row.label
        records.append(record)
    columns = ["id", "version", "created_at", "prediction", "feedback"]
    return pd.DataFrame(records) if records else pd.DataFrame(columns=columns)


def parse_since(text: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """'7d', '12h', '30m', '2w' or an ISO date/time → an aware UTC datetime."""
    now = now or dt.datetime.now(dt.timezone.utc)
    value = (text or "").strip().lower()
    units = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    if value[-1:] in units and value[:-1].replace(".", "", 1).isdigit():
        return now - dt.timedelta(seconds=float(value[:-1]) * units[value[-1]])
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise DataError(
            f"--since {text!r} is not understood: use e.g. 7d, 12h, 30m, 2w or 2026-11-01"
        ) from None
    return _utc(parsed)


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:  # SQLite returns naive datetimes; we always store UTC
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def iso_utc(value: dt.datetime | None) -> str | None:
    """A stored time as ISO 8601, naive times read as UTC (as the log writes them)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.isoformat()


def note_version_span(result: dict, rows: list[dict], checked: int, others: dict) -> None:
    """First and last prediction time of the checked version's `rows` (in log order), and a
    note naming the answers of other versions that were left out."""
    result["first_prediction"] = iso_utc(rows[0]["created_at"])
    result["last_prediction"] = iso_utc(rows[-1]["created_at"])
    if others:
        result["notes"].append(
            f"Only the {len(rows):,} answers of version {checked} were counted; "
            + ", ".join(f"{n:,} by version {v}" for v, n in others.items())
            + " were left out."
        )
