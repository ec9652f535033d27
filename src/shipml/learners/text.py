"""Text columns: which representation a model learns from, and its comparison with TF-IDF.

Modes (`train(mode=...)`, `shipml train --mode`):

- ``embed``: each text column becomes the frozen sentence embedding of a pretrained transformer
  (shipml.encoders; all-MiniLM-L6-v2 by default). The usual heads (logistic regression,
  LightGBM) are tuned on those features plus any tabular columns, and a TF-IDF + linear
  baseline is scored on the same validation plan; the better of the two is kept.
- ``finetune``: the encoder itself is trained with a classification (or regression) head on
  the training rows of a holdout, early-stopped on its validation rows (finetune.py); then
  as ``embed`` with the tuned encoder.
- ``fewshot``: contrastive tuning on pairs of texts (SetFit-style, fewshot.py) for a handful
  of examples per class; then as ``embed``.
- ``tfidf``: TF-IDF word and bigram weights only (fast, no PyTorch).
- ``auto`` (default): with the text extra installed, ``embed`` when the median class has at
  most 20 examples (few-shot: a linear head and the class names, see training.py; tuning the
  encoder on pairs was measured no better), ``finetune`` when at least three epochs of it fit
  the budget, else ``embed`` when embedding the texts fits, else ``tfidf`` — each measured on
  a sample of the texts, and the choice said in the notes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shipml.data.features import Encoder
from shipml.data.schema import Schema
from shipml.errors import DataError, MissingDependency

__all__ = [
    "MODES",
    "TUNED",
    "TextChoice",
    "TextFeatures",
    "choose_text_mode",
    "choose_in_plan",
    "embed_text",
    "pick_runtime_in_plan",
    "verdict",
    "release_text_steps",
    "class_names",
    "embed_features",
    "few_shot",
    "text_columns",
    "with_class_names",
    "tune_encoder",
]

log = logging.getLogger(__name__)
MODES = ("auto", "embed", "finetune", "fewshot", "tfidf")
TUNED = ("finetune", "fewshot")  # modes that train the encoder on a holdout's training rows
_EMBED_SHARE = 0.8  # auto: embed when encoding the texts takes at most this share of the budget
_TRAIN_COST = 4.0  # a training pass costs about this many forward passes (backward included)
_PAIR_COST = 7.0  # a text of a training pair costs this many forward passes (measured 6.5-8.5:
# backward, pairs of short texts in small batches; benchmarks/text.py 8/class, 3 datasets)
_FEWSHOT_SHARE = 0.5  # auto: fewshot when its projected time is at most this share of the budget
_FEWSHOT_MAX_CLASSES = 5  # auto: fewshot for this many classes at most (measured at 8 per class:
# +1.6 to +3.2 points over frozen embeddings with 2-3 classes, -0.3 to -3.0 with 10, 20, 77)
_FINETUNE_EPOCHS = 3  # auto: fine-tune when at least this many epochs fit
_NAME_WEIGHT = 3.0  # a class name counts as this many labelled texts of its class (measured)
_LOAD_FLOOR_S = 2.5  # auto: loading PyTorch, sentence-transformers and the encoder: at least
_FLOOR_S_PER_CHAR = 6e-5  # and it embeds no faster than this: all-MiniLM-L6-v2 measured 1e-4 s
# a character on an unloaded core (1.6e-4 with other jobs running), 3.8 s to load
_MIN_LOAD_SECONDS = 3.0  # auto: with less time left, TF-IDF without loading the encoder (PyTorch
# and the weights take 2-3 s to load on an unloaded core, then its speed is measured)


_SEARCH_SHARE = 0.15  # auto mode: embedding stops when less than this share of its time is left


@dataclass
class TextChoice:
    mode: str  # "embed", "finetune", "fewshot" or "tfidf"
    encoder: object | None = None  # SentenceEncoder unless mode == "tfidf"
    embed_seconds: float = 0.0  # projected seconds to embed every text once
    notes: list[str] = field(default_factory=list)
    auto: bool = False  # chosen by auto mode (which may fall back to TF-IDF on time)

    @property
    def tuned(self) -> bool:
        """The encoder is trained on a holdout's training rows first (finetune, fewshot)."""
        return self.mode in TUNED


@dataclass
class TextFeatures:
    """The text input kind's features step: text columns as sentence embeddings (`encoder`,
    `data`), next to the TF-IDF features the tabular encoder made (`tfidf`, `tfidf_data`), which
    the search compares them with on the same validation plan."""

    encoder: Encoder  # sentence-embedding features
    data: object  # TrainData on them
    tfidf: Encoder  # TF-IDF features (the tabular encoder's)
    tfidf_data: object  # TrainData on them
    source: str  # the sentence encoder (folder or packaged name)
    notes: list[str] = field(default_factory=list)
    tuning: dict | None = None  # the tuned modes' summary (finetune, fewshot)
    tuned: bool = False


def text_columns(schema: Schema) -> list[str]:
    return [c.name for c in schema.features if c.kind == "text"]


def choose_text_mode(
    mode: str,
    encoder_spec,
    schema: Schema,
    frame: pd.DataFrame,
    seconds_left: float,
    y: np.ndarray | None = None,
    *,
    seconds_per_char: float | None = None,
    after: Callable[[object], float] | None = None,
    slowdown: float = 1.0,
) -> TextChoice:
    """Resolve `mode` for this table and budget; load the sentence encoder if it is used.
    `y`: encoded target (class indices), for the few-shot rule. `seconds_per_char`: the
    encoder's speed (default: measured once on a sample of the texts); every projected time
    is that rate times the texts' characters, so a given rate makes the choice exact. Auto
    mode with the packaged encoder does not load it when even its fastest load and speed
    (times `slowdown`) cannot fit, unless the texts were embedded before (the cache).
    `after(encoder)`: seconds the steps after the search will take with this encoder (taken
    off `seconds_left` before choosing)."""
    columns = text_columns(schema)  # `mode` is one of MODES: train's parameter check
    early = _choice_without_encoder(mode, encoder_spec, schema, columns, seconds_left)
    if early is not None:
        return early
    texts = pd.concat([frame[c] for c in columns], ignore_index=True).tolist()
    if mode == "auto" and encoder_spec is None:
        floor = _floor_choice(texts, seconds_per_char, slowdown, seconds_left)
        if floor is not None:
            return floor
    from shipml.encoders import load_encoder

    try:
        encoder = load_encoder(encoder_spec)
    except MissingDependency as exc:
        if mode != "auto" or encoder_spec is not None:
            raise
        return TextChoice("tfidf", notes=[f"text columns: TF-IDF ({exc})"])
    if seconds_per_char is not None:
        encoder.seconds_per_char = seconds_per_char
    if after is not None:
        seconds_left -= after(encoder)
    if mode == "embed":
        return TextChoice(mode, encoder)
    if mode in TUNED:  # the time the tuned encoder will take to embed every text once
        seconds = encoder.estimate_seconds(texts, cached=False)
        return TextChoice(mode, encoder, embed_seconds=seconds)
    return _auto_choice(encoder, schema, frame, texts, y, seconds_left)


def _choice_without_encoder(mode: str, encoder_spec, schema: Schema, columns: list[str],
                            seconds_left: float) -> TextChoice | None:  # fmt: skip
    """The choice when no sentence encoder is needed (or possible) whatever the texts say;
    None to go on. A mode the table cannot take is refused here."""
    if not columns:
        if mode not in ("auto", "tfidf") or encoder_spec is not None:
            kinds = ", ".join(f"'{c.name}' ({c.kind})" for c in schema.features[:10])
            raise DataError(
                f"--mode {mode} / --encoder need a text column, and none was found among the "
                f"features: {kinds}; name one with --text-column"
            )
        return TextChoice("tfidf")
    if mode == "fewshot" and schema.task == "regression":
        raise DataError(
            "--mode fewshot learns from pairs of texts of the same class, so it needs a class "
            f"target; '{schema.target}' is numeric: use --mode finetune or --mode embed"
        )
    if mode == "tfidf":
        return TextChoice("tfidf")
    if mode == "auto" and encoder_spec is None and seconds_left < _MIN_LOAD_SECONDS:
        note = (f"text columns: TF-IDF (about {max(seconds_left, 0):.0f}s of the time budget "
                "left: too little to load a sentence encoder and embed the texts)")  # fmt: skip
        log.info(note)
        return TextChoice("tfidf", notes=[note])
    return None


def _floor_choice(texts: list, seconds_per_char: float | None, slowdown: float,
                  seconds_left: float) -> TextChoice | None:  # fmt: skip
    """Auto mode with the packaged encoder: TF-IDF without loading it when even its fastest
    load and speed cannot fit (unless the texts were embedded before); else None."""
    floor = _embedding_floor(texts, seconds_per_char, slowdown)
    if floor <= _EMBED_SHARE * seconds_left or _seen_before(texts):
        return None
    note = (
        f"text columns: TF-IDF, as loading a sentence encoder and embedding "
        f"{len(texts):,} texts would take at least {floor:.0f}s of the "
        f"{max(seconds_left, 0):.0f}s left; give a larger --time-budget or --mode embed"
    )
    log.info(note)
    return TextChoice("tfidf", notes=[note])


def _auto_choice(encoder, schema: Schema, frame: pd.DataFrame, texts: list, y,
                 seconds_left: float) -> TextChoice:  # fmt: skip
    """Auto mode with the encoder loaded: few-shot rules for a handful of rows per class, else
    finetune when three epochs fit, embed when embedding fits, else TF-IDF."""
    embed_s = encoder.estimate_seconds(texts)
    fresh_s = encoder.estimate_seconds(texts, cached=False)  # the tuned encoder has no cache
    median = _median_class_size(y, schema)
    from shipml.learners.fewshot import FEWSHOT_MAX_PER_CLASS

    few = median is not None and median <= FEWSHOT_MAX_PER_CLASS
    if few and embed_s <= _EMBED_SHARE * seconds_left:
        times = (embed_s, fresh_s, seconds_left)
        return _few_shot_choice(encoder, schema, frame, texts, median, times)
    kind, epochs, why = "finetune", _FINETUNE_EPOCHS, f"{len(frame):,} labelled texts"
    need = (epochs * _TRAIN_COST * 0.8 + 2.0) * fresh_s  # 80% of rows train, then embed
    if not few and need <= 0.7 * seconds_left:
        note = (
            f"text columns: {kind} ({why}; {epochs} epochs of tuning and embedding take "
            f"about {need:.0f}s of the {seconds_left:.0f}s left)"
        )
        log.info(note)
        return TextChoice(kind, encoder, embed_seconds=fresh_s, notes=[note])
    if embed_s > _EMBED_SHARE * seconds_left:
        note = (
            f"text columns: TF-IDF, as sentence embeddings of {len(texts):,} texts would take "
            f"about {embed_s:.0f}s of the {seconds_left:.0f}s left; give a larger "
            "--time-budget or --mode embed"
        )
        log.info(note)
        return TextChoice("tfidf", notes=[note])
    return TextChoice("embed", encoder, embed_seconds=embed_s)


def _few_shot_choice(encoder, schema: Schema, frame: pd.DataFrame, texts: list, median: float,
                     times: tuple[float, float, float]) -> TextChoice:  # fmt: skip
    """A handful of rows per class, and embedding fits: fewshot or embed. `times`: seconds to
    embed the texts (cache counted), to embed them with a tuned encoder, and left."""
    # Measured at 8 rows per class (benchmarks/text.py): pairs with the class names beat the
    # frozen encoder on the 2- and 3-class sentiment sets and lose on banking77's intents (10,
    # 20 or 77 of them), at 5-25x the time; so fewshot for few classes only, when one pass fits.
    embed_s, fresh_s, seconds_left = times
    n_classes = len(schema.classes or [])
    need = _fewshot_seconds(len(frame), len(class_names(schema) or []), fresh_s, len(texts))
    if n_classes > _FEWSHOT_MAX_CLASSES:
        kind, why = (
            "embed",
            (
                f"frozen sentence embeddings: with {n_classes} classes they beat tuning "
                "on pairs in shipml's benchmarks; --mode fewshot tunes anyway"
            ),
        )
    elif need <= _FEWSHOT_SHARE * seconds_left:
        kind, why = "fewshot", f"contrastive tuning on pairs takes about {need:.0f}s"
    else:
        kind, why = (
            "embed",
            (
                f"frozen sentence embeddings; --mode fewshot, or a --time-budget above "
                f"{need / _FEWSHOT_SHARE:.0f}s, tunes the encoder on pairs first"
            ),
        )
    note = f"text columns: {kind} (the median class has {median:.0f} rows: {why})"
    log.info(note)
    seconds = fresh_s if kind == "fewshot" else embed_s
    return TextChoice(kind, encoder, embed_seconds=seconds, notes=[note])


def _embedding_floor(texts: list, seconds_per_char: float | None, slowdown: float) -> float:
    """The least a sentence encoder can cost here: its fastest load and one pass over the
    distinct texts (characters past its window are cut), at the given rate or the floor's."""
    from shipml.encoders.loading import DEFAULT_MAX_LENGTH
    from shipml.encoders.sentence import as_text, char_cap

    unique = {t for t in (as_text(x) for x in texts) if t}
    cap = char_cap(DEFAULT_MAX_LENGTH)  # the packaged encoder's: auto mode, no --encoder
    chars = sum(min(len(t), cap) for t in unique)
    rate = _FLOOR_S_PER_CHAR if seconds_per_char is None else seconds_per_char
    return (_LOAD_FLOOR_S + rate * chars) * slowdown


def _seen_before(texts: list) -> bool:
    """Most of these texts are in some encoder's embedding cache (then embedding is cheap)."""
    from shipml.encoders.cache import EmbeddingCache, text_key
    from shipml.encoders.sentence import as_text

    keys = [text_key(t) for t in dict.fromkeys(as_text(x) for x in texts) if t]
    return bool(keys) and EmbeddingCache.seen_by_any(keys)


def _fewshot_seconds(rows: int, names: int, fresh_s: float, n_texts: int) -> float:
    """Projected seconds of fewshot mode: one pass of pairs (4 texts per anchor and iteration,
    each costing _PAIR_COST forward passes) on 80% of the rows and the class names, then
    embedding every text with the tuned encoder twice (features, runtime check)."""
    from shipml.learners.fewshot import pair_texts

    per_text = fresh_s / max(n_texts, 1)
    return pair_texts(int(0.8 * rows) + names) * _PAIR_COST * per_text + 2.0 * fresh_s


def few_shot(schema: Schema, y: np.ndarray | None) -> bool:
    """Classification with at most FEWSHOT_MAX_PER_CLASS rows in the median class: too few
    rows for cross-validation to pick among many heads (it picks the luckiest)."""
    from shipml.learners.fewshot import FEWSHOT_MAX_PER_CLASS

    median = _median_class_size(y, schema)
    return median is not None and median <= FEWSHOT_MAX_PER_CLASS


def class_names(schema: Schema) -> list[str] | None:
    """The classes as words ('card_arrival' -> 'card arrival'), in class-index order, when the
    one feature is a text column and every name has a letter (0/1 say nothing); else None."""
    names = [str(c).replace("_", " ").replace("-", " ").strip() for c in schema.classes or []]
    if len(schema.features) != 1 or schema.features[0].kind != "text" or not names:
        return None
    return names if all(any(ch.isalpha() for ch in name) for name in names) else None


def with_class_names(schema: Schema, features: Encoder, data, plan):
    """(data, plan, note) with each class's name added as a labelled training row, in every
    training fold and never in validation: a few-shot head then knows that 'card arrival' is
    about cards arriving before it has seen eight such tickets. Only when the one feature is
    a text column and every class name has a letter in it (names like 0/1 say nothing);
    otherwise (data, plan, None)."""
    names = class_names(schema)
    if names is None:
        return data, plan, None
    from shipml.data.split import ValidationPlan
    from shipml.learners.base import TrainData

    column = schema.features[0].name
    X_names = features.transform(pd.DataFrame({column: pd.Series(names, dtype="string")}))
    n, k = len(data.y), len(names)
    extra = np.arange(n, n + k)
    weight = np.ones(n) if data.weight is None else data.weight
    data = TrainData(
        np.vstack([data.X, X_names]),
        np.concatenate([data.y, np.arange(k, dtype=data.y.dtype)]),
        data.task,
        data.n_classes,
        data.categorical,
        np.concatenate([weight, np.full(k, _NAME_WEIGHT)]),
    )
    folds = [(np.concatenate([train, extra]), valid) for train, valid in plan.folds]
    plan = ValidationPlan(plan.kind, folds, plan.description)
    note = (
        f"few-shot: the {k} class names ('{names[0]}', ...) were added as training examples "
        f"(each weighted as {_NAME_WEIGHT:g} rows), never as validation rows"
    )
    return data, plan, note


def _median_class_size(y: np.ndarray | None, schema: Schema) -> float | None:
    if y is None or schema.task == "regression" or len(y) == 0:
        return None
    counts = np.bincount(np.asarray(y, dtype=np.int64))
    return float(np.median(counts[counts > 0]))


def tune_encoder(
    choice: TextChoice,
    schema: Schema,
    frame: pd.DataFrame,
    y: np.ndarray,
    rows: tuple[np.ndarray, np.ndarray],
    *,
    deadline: float,
    seed: int,
    progress=None,
    clock: Callable[[], float] = time.monotonic,
):
    """Fine-tune (or few-shot tune) the chosen encoder on the texts of the training rows,
    early-stopped on the validation rows: (TuneResult, encoder to use, notes). `deadline` is
    in seconds of `clock` (the time plan's; default time.monotonic)."""
    from shipml.learners.fewshot import fewshot_encoder
    from shipml.learners.finetune import finetune_encoder

    columns = text_columns(schema)
    column = max(columns, key=lambda c: frame[c].astype("string").str.len().mean() or 0)
    from shipml.encoders.sentence import as_text

    texts = [as_text(v) for v in frame[column].tolist()]
    train_rows, valid_rows = rows
    timed = {"deadline": deadline, "seed": seed, "progress": progress, "clock": clock}
    if choice.mode == "fewshot":
        result = fewshot_encoder(choice.encoder, texts, y, train_rows, valid_rows,
                                 names=class_names(schema), **timed)  # fmt: skip
    else:
        result = finetune_encoder(choice.encoder, texts, y, train_rows, valid_rows,
                                  task=schema.task, n_classes=len(schema.classes or []),
                                  **timed)  # fmt: skip
    what = "fine-tuned" if choice.mode == "finetune" else "contrastively tuned (few-shot)"
    if result.best_step == 0:
        note = (
            f"text encoder: {choice.mode} tuning did not beat the pretrained encoder on "
            f"validation ({result.steps} steps run), so the pretrained weights are used"
        )
        return result, choice.encoder, [note]
    others = [c for c in columns if c != column]
    note = (
        f"text encoder {what} on column '{column}' ({len(train_rows):,} training rows): "
        f"{result.steps} steps, {result.epochs:.1f} epochs in {result.seconds:.0f}s "
        f"({result.stopped}); "
        + (
            f"best validation score {result.best_score} at step {result.best_step}"
            if choice.mode == "finetune"
            else f"validation score {result.best_score} at the end (the last weights are kept)"
        )
        + (f"; columns {', '.join(others)} use the tuned encoder too" if others else "")
    )
    log.info(note)
    return result, result.encoder, [note]


def embed_features(
    schema: Schema, typed: pd.DataFrame, sentence_encoder
) -> tuple[Encoder, np.ndarray, list[str]]:
    """(encoder, feature matrix, notes) with text columns as sentence embeddings."""
    encoder = Encoder.fit(schema, typed, text_encoder=sentence_encoder)
    reports: dict = {}
    X = encoder.transform(typed, reports=reports)
    notes = []
    for column, report in reports.items():
        notes.extend(report.notes(column, sentence_encoder.max_length))
        log.info(
            "column %s: %d texts embedded (%d cached, %d computed) in %.1fs",
            column,
            report.texts,
            report.cached,
            report.computed,
            report.seconds,
        )
    return encoder, X, notes


# -- the text steps of `train`, on its time plan (planning.py) ---------------------------------
def choose_in_plan(schema: Schema, frame: pd.DataFrame, y, mode: str, encoder_spec,
                   timing) -> TextChoice | None:  # fmt: skip
    """The text mode for this table and the time left (None: no sentence encoder, TF-IDF as
    usual). The steps a sentence encoder adds after the search (the int8 check, storing its
    weights) are reserved first, so the mode is chosen on the time that is really left."""
    y = y if schema.task != "regression" else None
    left = timing.deadline() - timing.clock()

    def after(sentence_encoder) -> float:
        return _reserve_text_steps(timing, sentence_encoder, frame, schema)

    choice = choose_text_mode(
        mode, encoder_spec, schema, frame, left, y, after=after, slowdown=timing.slowdown
    )
    choice.auto = mode == "auto"
    schema.notes.extend(choice.notes)
    if choice.mode == "tfidf":
        release_text_steps(timing)
        return None
    return choice


def release_text_steps(timing) -> None:
    """No sentence encoder after all: nothing to check or store after the search."""
    for step in ("runtime", "write"):
        timing.release(step)
    timing.estimates.pop("runtime", None)


def _reserve_text_steps(timing, sentence_encoder, frame, schema) -> float:
    """Plan the int8 ONNX check and the copy of the encoder's weights (planning.py); returns
    the seconds reserved for them."""
    from shipml.learners.runtime import MAX_ROWS
    from shipml.planning import plan_text_steps

    texts = frame[text_columns(schema)[0]].tolist()
    per_text = sentence_encoder.estimate_seconds(texts, cached=False) / max(len(texts), 1)
    rows = min(MAX_ROWS, len(texts))
    return plan_text_steps(timing, sentence_encoder.weights_bytes, rows, per_text)


def embed_text(schema, frame, tfidf: Encoder, tdata, choice: TextChoice, plan, timing, seed,
               progress) -> TextFeatures | None:  # fmt: skip
    """Sentence-embedding features for the chosen mode; the tuned modes first train the
    encoder on the holdout's training rows. None when auto mode's embedding ran out of time
    (the note says so; the model learns from TF-IDF)."""
    from shipml.encoders.sentence import EncodeStopped
    from shipml.learners.base import TrainData

    deadline = timing.deadline()
    notes, tuning, encoder = [], None, choice.encoder
    if choice.tuned:
        left = deadline - timing.clock()
        until = timing.clock() + 0.8 * max(0.0, left - 1.3 * choice.embed_seconds)
        result, encoder, notes = tune_encoder(
            choice, schema, frame, tdata.y, plan.folds[0], deadline=until, seed=seed,
            progress=progress, clock=timing.clock,
        )  # fmt: skip
        tuning = result.summary()
    typed = schema.coerce(frame, strict=False)
    if choice.auto:  # leave the search on TF-IDF a share of the time if embedding falls behind
        # the encoder stops on time.monotonic(): the plan's time left, from now on that clock
        left = max(0.0, deadline - timing.clock())
        encoder.deadline = time.monotonic() + (1 - _SEARCH_SHARE) * left
    try:
        features, X, embed_notes = embed_features(schema, typed, encoder)
    except EncodeStopped as stopped:
        why = f"sentence embeddings {stopped} of the time budget"
        schema.notes.append(f"text columns: TF-IDF, as {why}; a larger --time-budget keeps them")
        release_text_steps(timing)
        return None
    finally:
        encoder.deadline = None
    data = TrainData(X, tdata.y, tdata.task, tdata.n_classes, features.categorical, tdata.weight)
    return TextFeatures(features, data, tfidf, tdata, encoder.source, notes + embed_notes,
                        tuning, choice.tuned)  # fmt: skip


def pick_runtime_in_plan(model, frame, y, rows, seed, timing) -> dict | None:
    """PyTorch or int8 ONNX for the sentence encoder, judged on the validated rows, when the
    check fits what is left of the budget (else PyTorch, and the note says why)."""
    from shipml.learners.runtime import pick_runtime
    from shipml.planning import runtime_skip

    if model.encoder.text_encoder is None:
        return None
    skipped = runtime_skip(timing)
    if skipped is not None:
        return {"runtime": "pytorch", "note": skipped}
    truth = y[rows] if model.task == "regression" else np.asarray(model.classes, object)[y[rows]]
    budget = timing.budget("runtime")
    return timing.run(
        "runtime", lambda: pick_runtime(model, frame.iloc[rows], truth, seed=seed, budget=budget)
    )


def verdict(text: TextFeatures, embed_score: float, tfidf_score: float, metric: str) -> str:
    """Which representation was kept, and the validation scores that decided it."""
    from shipml.scoring import better

    kept = "TF-IDF" if better(metric, tfidf_score, embed_score) else "sentence embeddings"
    return (
        f"{kept} kept — validation {metric} {embed_score:.4f} with sentence "
        f"embeddings ({text.source}) vs {tfidf_score:.4f} with the TF-IDF + linear "
        "baseline"
    )
