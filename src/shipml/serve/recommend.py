"""The recommendation routes of the server: top-k for a user or a basket, similar items.

`POST /v1/models/{name}/recommend` `{"user": "42", "k": 10}` or `{"items": ["17", "4"], "k": 10}`
(optional `exclude`, `filter`); `POST /v1/models/{name}/similar` `{"item": "17", "k": 10}`.
Same API keys (scope "predict"), rate limits, body limits and Prometheus metrics as `/predict`.
Each answer gets a prediction id and one row in the prediction log: the model and version, the
request's items, the returned item ids; the user id only as the server's keyed hash (pii.py).
Clicks and purchases sent back to `/v1/feedback` with that id give the hit rate and CTR of
`shipml monitor` (monitor/recommend.py).

A request is scored with NumPy on the event loop once the model has shown it answers in about a
millisecond (`Timing`); a slower model (a large catalogue, a sequential member) runs in the
thread pool so that it never holds up the other requests.
"""

import datetime as dt
import time
import uuid

from shipml.errors import UsageError

__all__ = ["add_recommend_routes", "check_tabular", "store_event", "TASK", "MAX_K", "MAX_ITEMS"]

TASK = "recommend"
MAX_K = 1000
MAX_ITEMS = 1000  # items of a basket or session, and of `exclude`
MAX_FILTERS = 20
MAX_ID_CHARS = 200
QUICK_S = 0.002  # an answer this fast (measured) runs on the event loop


def check_tabular(model, name: str) -> None:
    """A recommender asked for /predict, /explain, a CSV or the v2 protocol: say which routes
    it answers instead (400); an answer model likewise (serve/answer.py)."""
    from shipml.serve.answer import check_not_answer

    check_not_answer(model, name)
    if getattr(model, "task", None) == TASK:
        raise UsageError(
            f"model {name!r} is a recommender: POST /v1/models/{name}/recommend with "
            '{"user": "..."} or {"items": [...]}, or POST '
            f'/v1/models/{name}/similar with {{"item": "..."}}'
        )


def check_recommender(model, name: str) -> None:
    if getattr(model, "task", None) != TASK:
        raise UsageError(
            f"model {name!r} is a {model.task} model, not a recommender: POST "
            f'/v1/models/{name}/predict with {{"records": [...]}}'
        )


def recommender_info(name: str, version: int, model) -> dict:
    """GET /v1/models/{name} for a recommender: no schema or classes; its catalogue instead."""
    metrics = {k: v for k, v in model.metrics.items() if isinstance(v, (int, float))}
    members = [{"name": m.name, "weight": m.weight} for m in getattr(model, "members", [])]
    return {
        "name": name,
        "version": version,
        "task": TASK,
        "classes": None,
        "n_items": len(model.items),
        "n_users": len(model.users),
        "members": members,
        "metrics": metrics,
        "routes": [f"/v1/models/{name}/recommend", f"/v1/models/{name}/similar"],
    }


class Timing:
    """How long each served model takes to answer (the last few answers, smoothed)."""

    def __init__(self, quick_s: float = QUICK_S) -> None:
        self.quick_s = quick_s
        self.seconds: dict[int, float] = {}

    def quick(self, model) -> bool:
        seconds = self.seconds.get(id(model))
        return seconds is not None and seconds < self.quick_s

    def record(self, model, seconds: float) -> None:
        before = self.seconds.get(id(model))
        self.seconds[id(model)] = seconds if before is None else 0.8 * before + 0.2 * seconds


class Recommendations:
    """Answers the two routes: score, give the answer an id, count it, log it."""

    def __init__(self, predictor, timing: Timing | None = None) -> None:
        self.predictor = predictor
        self.timing = timing or Timing()

    def recommend(self, name, model, version, body, key) -> dict:
        from shipml.recommend.feedback import logged_user

        user = None if body.user is None else str(body.user)
        items = [str(i) for i in body.items]
        logged = {"user": self._hashed_user(model, body.user),
                  **logged_user(model, user),  # the model's own key: retrain joins feedback on it
                  "items": items}  # fmt: skip

        def score(options: dict) -> dict:
            return model.recommend(user=user, items=items, k=body.k, **options)

        return self._answer(name, model, version, body, key, ("recommend", logged, score))

    def similar(self, name, model, version, body, key) -> dict:
        from shipml.recommend.feedback import logged_user

        logged = {"item": str(body.item), **logged_user(model, None)}

        def score(options: dict) -> dict:
            return model.similar(str(body.item), k=body.k, **options)

        return self._answer(name, model, version, body, key, ("similar", logged, score))

    def _answer(self, name, model, version, body, key, what) -> dict:
        """What both routes do: score (`what`: the route, what its log row keeps of the
        request, the scoring call given the `exclude`/`filter` options), then `_finish`."""
        route, logged, score = what
        started = time.perf_counter()
        answer = _plain_answer(score(_options(body)))
        inputs = {"route": route, **logged, "k": body.k,
                  "exclude": [str(i) for i in body.exclude], "filter": body.filter}  # fmt: skip
        return self._finish(name, model, version, inputs, answer, key, started)

    def _hashed_user(self, model, user) -> str | None:
        if user is None:
            return None
        return self.predictor.hasher_for(model).hash("user", str(user))

    def _finish(self, name, model, version, inputs, answer, key, started) -> dict:
        seconds = time.perf_counter() - started
        self.timing.record(model, seconds)
        pid = str(uuid.uuid4())
        kind = answer.get("fallback") or "personal"  # the class label of the metric
        self.predictor.metrics.count_predictions(name, version, labels=[kind])
        log = self.predictor.log
        if log is not None:
            outputs = {"items": [row["item"] for row in answer["items"]],
                       "fallback": answer.get("fallback"),
                       "unknown_items": answer.get("unknown_items", [])}  # fmt: skip
            log.append([{
                "id": pid, "model": name, "version": version,
                "created_at": dt.datetime.now(dt.timezone.utc), "inputs": inputs,
                "outputs": outputs, "latency_ms": 1000 * seconds, "key_name": key,
            }])  # fmt: skip
        return {"model": name, "version": version, "id": pid, **answer}


def _options(body) -> dict:
    """`exclude` and `filter` when the request has them (a model without those options then
    still answers the requests that do not use them)."""
    out = {}
    if body.exclude:
        out["exclude"] = [str(i) for i in body.exclude]
    if body.filter:
        out["filter"] = body.filter
    return out


def _plain_answer(answer: dict) -> dict:
    """The model's answer with the fields every response has (`unknown_items` even when
    empty), scores rounded to 6 digits, item-table values as plain JSON."""
    from shipml.model import json_safe

    items = []
    for row in answer.get("items", []):
        row = dict(row)
        row["item"] = str(row["item"])
        row["score"] = round(float(row["score"]), 6)
        items.append(json_safe(row))
    unknown = answer.get("unknown_items", answer.get("unknown", []))
    out = {"items": items, "fallback": answer.get("fallback")}
    if "unknown_items" in answer or "unknown" in answer:
        out["unknown_items"] = [str(i) for i in unknown]
    return out


def add_recommend_routes(app, pool, predictor, need, served, as_json) -> Recommendations:
    """The two routes on `app`; `served(request, name)` -> (model, version) as for /predict,
    `as_json(dict)` -> the response."""
    from fastapi import Depends, Request
    from starlette.concurrency import run_in_threadpool

    RecommendBody, SimilarBody = _bodies()
    answers = Recommendations(predictor)

    async def run(method, model, *args):
        if answers.timing.quick(model):  # ~1 ms: on the loop, in arrival order
            return method(*args)
        return await run_in_threadpool(method, *args)

    def route(kind: str, body_type, method, doc: str) -> None:
        """POST /v1/models/{name}/<kind>: the API key, the model served under `name`, one
        row, `method` on the loop or in the pool, the answer as JSON."""

        async def endpoint(request: Request, name: str, body: body_type,
                           key=Depends(need("predict"))):  # fmt: skip
            model, version = served(request, name)
            check_recommender(model, name)
            request.state.rows = 1
            return as_json(await run(method, model, name, model, version, body, _key_name(key)))

        endpoint.__name__, endpoint.__doc__ = kind, doc
        app.post(f"/v1/models/{{name}}/{kind}")(endpoint)

    route("recommend", RecommendBody, answers.recommend,
          "Top-k items for a user id and/or a basket or session of items.")  # fmt: skip
    similar = 'The items most similar to an item ("customers who bought this also bought").'
    route("similar", SimilarBody, answers.similar, similar)
    return answers


def _key_name(key) -> str | None:
    return key.name if key is not None else None


def _bodies():
    """The request bodies: strict types (no "10" for 10), bounded sizes, no unknown fields."""
    from typing import Annotated

    from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

    Id = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_CHARS)] | StrictInt
    Value = StrictStr | StrictInt | StrictFloat | StrictBool
    Filter = Annotated[dict[StrictStr, Value | list[Value]], Field(max_length=MAX_FILTERS)]
    strict = ConfigDict(extra="forbid")

    class RecommendBody(BaseModel):
        model_config = strict
        user: Id | None = None
        items: list[Id] = Field(default_factory=list, max_length=MAX_ITEMS)
        k: StrictInt = Field(10, ge=1, le=MAX_K)
        exclude: list[Id] = Field(default_factory=list, max_length=MAX_ITEMS)
        filter: Filter | None = None

    class SimilarBody(BaseModel):
        model_config = strict
        item: Id
        k: StrictInt = Field(10, ge=1, le=MAX_K)
        exclude: list[Id] = Field(default_factory=list, max_length=MAX_ITEMS)
        filter: Filter | None = None

    return RecommendBody, SimilarBody


def store_event(predictor, body, key: str | None, retry) -> dict:
    """A click or purchase on an item, for a recommendation the server returned (`body`:
    prediction_id, item, event; `retry(predictor, store)` waits for a row still queued)."""
    from shipml.errors import DataError
    from shipml.monitor.log import FeedbackError
    from shipml.monitor.recommend import add_event

    if predictor.log is None:
        raise DataError("this server does not log predictions (--no-log), so it takes no feedback")
    if body.item is None or body.event is None:
        missing = "item" if body.item is None else "event"
        raise FeedbackError(
            f'{missing} is required: a recommendation\'s feedback is {{"item": the item clicked '
            'or bought, "event": "click" or "purchase"}',
            422,
        )
    if body.label is not None:
        raise FeedbackError('send either "label" or "item" and "event", not both', 422)
    engine = predictor.log.engine
    return retry(predictor, lambda: add_event(engine, body.prediction_id, str(body.item),
                                              body.event, key_name=key))  # fmt: skip
