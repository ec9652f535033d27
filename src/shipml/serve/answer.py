"""The answer route of the server: a customer's question in, the best FAQ answer (or a hand-over
to a person) out.

`POST /v1/models/{name}/answer` `{"question": "my card still hasn't arrived", "k": 3}` returns the
model's answer dict (answer, entry, question, confidence, handover, source, alternatives) with the
model, its version and a prediction id. Same API keys (scope "predict"), rate limits, body limits
and Prometheus metrics as `/predict` (`shipml_predictions_total` counts "answered" and
"handover"). Each answer is one row of the prediction log: the question with its personal data
(e-mail addresses, phone numbers, IBANs, card numbers, full names) replaced by the server's keyed
hashes (data/pii_text.py), and the entry, confidence, hand-over flag and alternatives returned.

Feedback joins by prediction id on `POST /v1/feedback`: `{"prediction_id": ..., "helpful": true}`
or `{"prediction_id": ..., "entry": "<the right entry id>"}` (monitor/answer.py stores it);
`shipml monitor` turns it into the helpful share and `shipml retrain` into paraphrases.
"""

import datetime as dt
import time
import uuid

from shipml.errors import UsageError

__all__ = ["add_answer_routes", "answer_info", "check_not_answer", "is_answer",
           "redacted_question", "store_answer_feedback", "TASK", "MAX_K",
           "MAX_QUESTION_CHARS"]  # fmt: skip

TASK = "answer"
MAX_K = 50
MAX_QUESTION_CHARS = 2000
MAX_ENTRY_CHARS = 200


def is_answer(model) -> bool:
    return getattr(model, "kind", None) == TASK or getattr(model, "task", None) == TASK


def check_not_answer(model, name: str) -> None:
    """An answer model asked for /predict, /explain, a CSV or the v2 protocol: 400 naming the
    route it answers."""
    if is_answer(model):
        raise UsageError(
            f"model {name!r} answers questions: POST /v1/models/{name}/answer with "
            '{"question": "...", "k": 3}'
        )


def check_answer_model(model, name: str) -> None:
    if not is_answer(model):
        task = getattr(model, "task", None) or "other"
        raise UsageError(
            f"model {name!r} is a {task} model, not an answer model (trained with --task answer)"
        )


def answer_info(name: str, version: int, model) -> dict:
    """GET /v1/models/{name} for an answer model: its FAQ size and threshold, no schema."""
    metrics = {k: v for k, v in (getattr(model, "metrics", None) or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}  # fmt: skip
    return {
        "name": name,
        "version": version,
        "task": TASK,
        "classes": None,
        "n_entries": len(model.entries),
        "threshold": model.threshold,
        "metrics": metrics,
        "routes": [f"/v1/models/{name}/answer"],
    }


def redacted_question(text: str, hasher) -> str:
    """The question as the log keeps it: personal spans as `[kind hmac:<hex>]`."""
    from shipml.data.pii_text import redact_text

    return redact_text(text, lambda kind, span: f"[{kind} {hasher.hash('question', span)}]")


class Answers:
    """Answers the route: ask the model, give the answer an id, count it, log it."""

    def __init__(self, predictor) -> None:
        self.predictor = predictor

    def answer(self, name: str, model, version: int, body, key: str | None) -> dict:
        from shipml.model import json_safe

        started = time.perf_counter()
        result = json_safe(model.answer(body.question, k=body.k))
        seconds = time.perf_counter() - started
        pid = str(uuid.uuid4())
        kind = "handover" if result.get("handover") else "answered"
        self.predictor.metrics.count_predictions(name, version, labels=[kind])
        log = self.predictor.log
        if log is not None:
            hasher = self.predictor.hasher_for(model)
            inputs = {"route": TASK, "question": redacted_question(body.question, hasher),
                      "k": body.k}  # fmt: skip
            alternatives = [a.get("entry") for a in result.get("alternatives", [])]
            outputs = {"entry": result.get("entry"), "confidence": result.get("confidence"),
                       "handover": bool(result.get("handover")),
                       "alternatives": alternatives}  # fmt: skip
            log.append([{
                "id": pid, "model": name, "version": version,
                "created_at": dt.datetime.now(dt.timezone.utc), "inputs": inputs,
                "outputs": outputs, "latency_ms": 1000 * seconds, "key_name": key,
            }])  # fmt: skip
        return {"model": name, "version": version, "id": pid, **result}


def _body():
    """The request body: strict types (no "3" for 3), bounded sizes, no unknown fields."""
    from typing import Annotated

    from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

    class AnswerBody(BaseModel):
        model_config = ConfigDict(extra="forbid")
        question: Annotated[StrictStr, Field(min_length=1, max_length=MAX_QUESTION_CHARS)]
        k: StrictInt = Field(3, ge=1, le=MAX_K)

    return AnswerBody


def add_answer_routes(app, predictor, need, served, as_json) -> Answers:
    """The answer route on `app`; `served(request, name)` -> (model, version) as for /predict,
    `as_json(dict)` -> the response."""
    from fastapi import Depends, Request
    from starlette.concurrency import run_in_threadpool

    AnswerBody = _body()
    answers = Answers(predictor)

    @app.post("/v1/models/{name}/answer")
    async def answer(request: Request, name: str, body: AnswerBody,
                     key=Depends(need("predict"))):  # fmt: skip
        """The best FAQ answer to a question, its entry and confidence, or a hand-over."""
        model, version = served(request, name)
        check_answer_model(model, name)
        if not body.question.strip():
            raise UsageError("question is empty: send the customer's question as text")
        request.state.rows = 1
        key_name = key.name if key is not None else None
        # encoding the question takes milliseconds: off the event loop
        out = await run_in_threadpool(answers.answer, name, model, version, body, key_name)
        return as_json(out)

    return answers


def store_answer_feedback(pool, predictor, body, key: str | None, retry) -> dict:
    """`{"helpful": true|false}` or `{"entry": "<right id>"}` for an answer the server returned
    (`retry(predictor, store)` waits for a row still queued in the log)."""
    from shipml.errors import DataError, FeedbackError, ModelNotFound
    from shipml.monitor.answer import add_answer_feedback

    if predictor.log is None:
        raise DataError("this server does not log predictions (--no-log), so it takes no feedback")
    if body.label is not None or body.item is not None or body.event is not None:
        raise FeedbackError('an answer\'s feedback is {"helpful": true|false} or {"entry": '
                            '"<the right entry id>"}, without "label", "item" or "event"',
                            422)  # fmt: skip
    if body.helpful is True and body.entry is not None:
        raise FeedbackError('send "helpful": true, or the right "entry" (with "helpful": false '
                            "or alone), not both", 422)  # fmt: skip

    def entries(model_name: str):
        try:
            model, _ = pool.get(model_name)
        except ModelNotFound:
            return None  # served elsewhere: store as sent
        return {str(e["id"]) for e in model.entries} if is_answer(model) else None

    engine = predictor.log.engine
    entry = None if body.entry is None else str(body.entry)
    return retry(predictor, lambda: add_answer_feedback(engine, body.prediction_id,
                                                        helpful=body.helpful, entry=entry,
                                                        key_name=key, entries=entries))  # fmt: skip
