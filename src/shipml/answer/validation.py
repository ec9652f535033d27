"""Validating an FAQ assistant: which questions it is judged on, and what is chosen there —
the fusion and field weights, the confidence and the hand-over threshold.

Without labelled questions, the FAQ's own paraphrases are held out in folds: fold f holds out
the f-th paraphrase (in a random order) of every entry that has more than f, and its questions
are scored against the FAQ without them; every paraphrase is held out at most once, up to
`MAX_FOLDS` folds and `MAX_VALIDATION` questions in all (a larger FAQ: one fold over a sample
of its entries). Each question is asked a second time with its own entry removed — a question
the FAQ cannot answer, the negatives the confidence and threshold need. The settings, the
confidence and the threshold are chosen on all folds together.

Why folds: with one held-out paraphrase per entry, 77 questions (BANKING77 as an FAQ, k = 10)
chose the settings among 433 and then fitted the confidence on the very questions that chose
them — BM25 alone won there (test Hit@1 0.805) and validation Hit@1 ran 0.10 above the test's,
so the threshold answered too much (test precision 0.919). On nine folds (693 questions) the
same FAQ chose alpha 0.8 (test Hit@1 0.849) and its threshold kept a test precision of 0.964.
A contrastively tuned encoder learns from the paraphrases of the second half of the folds and
chooses its weights on the first: its confidence is then fitted on the others (with the
head at a share of 1.0 the tuned encoder's confidence fitted on all nine folds answered 82 % of
the test at precision 0.935).

With labelled real questions (question, expected_id or "none"), those are split: half join the
first fold's questions, half are the test the reported metrics come from (all of them
validate when there are fewer than `_MIN_TEST` * 2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from shipml.answer.confidence import (
    DEFAULT_CALIBRATOR,
    Calibrator,
    candidate_features,
    choose_threshold,
    rank,
)
from shipml.answer.head import fit_head
from shipml.answer.metrics import answer_metrics, ranks
from shipml.answer.retrieval import (
    DEFAULT_SETTINGS,
    DenseIndex,
    FieldTexts,
    Lexical,
    Scores,
    Settings,
    centroids,
)

__all__ = ["Plan", "Fit", "make_plan", "validate", "held_out", "scoped_queries",
           "every_question", "GRID", "MAX_VALIDATION", "MAX_FOLDS",
           "DEFAULT_THRESHOLD"]  # fmt: skip

_MIN_TEST = 10  # labelled questions on each side of the split, at least
# Validation questions kept, at most, all folds together: every question is scored against
# every text in each grid step (a 10,000-entry FAQ held out 10,000 paraphrases: 7 GB and ten
# minutes for a 30 s budget).
MAX_VALIDATION = 1_500
MAX_FOLDS = 10
DEFAULT_THRESHOLD = 0.85  # with DEFAULT_CALIBRATOR: see confidence.py
# The questions asked with their own entry removed stand for the questions an FAQ cannot
# answer; they are harder than most such questions (the nearest entry is on the same topic),
# so together they count as this share of the calibration set, not as half of it.
NEGATIVE_SHARE = 0.25
# The settings searched on validation: dense share, paraphrase and answer field weights.
GRID = {
    "alpha": (0.8, 1.0, 0.9, 0.7, 0.6, 0.5, 0.4, 0.3, 0.0),
    "paraphrase": (1.0, 0.95),
    "answer": (0.8, 0.0, 0.6, 0.7, 0.9, 1.0),
    "centroid": (0.0, 0.3, 0.5, 0.7),
}
HEAD_SHARES = (0.3, 0.6, 1.0)  # tried after the grid, on its best settings (head.py)


@dataclass
class Plan:
    folds: list[list[tuple[int, str]]]  # fold f: (entry index, held-out paraphrase)
    labelled: list[tuple[str, str]]  # validation questions (text, expected id or "none")
    test: list[tuple[str, str]]
    describe: str

    @property
    def held(self) -> list[tuple[int, str]]:
        """The first fold: what tuning chooses its weights on."""
        return self.folds[0] if self.folds else []

    @property
    def calibration_folds(self) -> list[int]:
        """The folds after the first that tuning leaves out (half of them, at least one), so a
        tuned encoder's confidence is fitted on questions it neither learned from nor was
        chosen on (one fold of 77 questions at k = 10 left its test precision at 0.946)."""
        return list(range(1, 1 + max(1, (len(self.folds) - 1) // 2)))[: len(self.folds) - 1]


def make_plan(entries, labelled, seed: int, notes: list[str]) -> Plan:
    rng = np.random.default_rng(seed)
    folds, having = _folds(entries, rng)
    parts = [_describe(folds, having)] if folds else []
    val, test = list(labelled or [])[: 2 * MAX_VALIDATION], []
    if len(val) >= 2 * _MIN_TEST:
        order = rng.permutation(len(val))
        half = len(val) // 2
        test = [val[i] for i in order[half:]]
        val = [val[i] for i in order[:half]]
        parts.append(
            f"{len(val)} of {len(labelled)} labelled questions (the other {len(test)} "
            "are the test of the reported metrics)"
        )
    elif val:
        parts.append(
            f"all {len(val)} labelled questions (too few to keep a test apart: the "
            "reported metrics are validation metrics)"
        )
    if not parts:
        notes.append(
            "no validation: the FAQ has no paraphrases and no labelled questions were "
            "given, so the default fusion and field weights, confidence and hand-over "
            f"threshold ({DEFAULT_THRESHOLD}) are used and nothing was measured; add "
            "paraphrases or questions= (question, expected_id) to choose them"
        )
    return Plan(folds, val, test, "; ".join(parts) or "none")


def _folds(entries, rng: np.random.Generator) -> tuple[list[list[tuple[int, str]]], int]:
    """(the folds, how many entries have a paraphrase)."""
    orders = {i: rng.permutation(len(e["paraphrases"])) for i, e in enumerate(entries)
              if e.get("paraphrases")}  # fmt: skip
    having = len(orders)
    folds: list[list[tuple[int, str]]] = []
    for f in range(min(MAX_FOLDS, max((len(o) for o in orders.values()), default=0))):
        fold = [(i, entries[i]["paraphrases"][int(o[f])]) for i, o in orders.items()
                if len(o) > f]  # fmt: skip
        if not folds and len(fold) > MAX_VALIDATION:  # a sample of the entries, one fold
            keep = np.sort(rng.choice(len(fold), MAX_VALIDATION, replace=False))
            return [[fold[j] for j in keep]], having
        if sum(map(len, folds)) + len(fold) > MAX_VALIDATION:
            break
        folds.append(fold)
    return folds, having


def _describe(folds, having: int) -> str:
    n = sum(map(len, folds))
    if len(folds) == 1:
        which = "one per entry that has any"
        if n < having:
            which = f"one per entry, for {n:,} of the {having:,} entries that have any"
    else:
        which = (f"in {len(folds)} folds: fold f holds out one paraphrase of each entry that "
                 "has more than f, scored against the FAQ without them")  # fmt: skip
    return (f"{n:,} held-out paraphrases ({which}), each also asked with its entry removed "
            "as a question the FAQ cannot answer")  # fmt: skip


def held_out(texts: FieldTexts, held) -> np.ndarray:
    """The columns of `texts` the index of a fold keeps (all but its held-out paraphrases)."""
    held_rows = {(i, p) for i, p in held}
    keep = np.array([not (f == 1 and (int(i), t) in held_rows)
                     for t, i, f in zip(texts.texts, texts.entry, texts.field)])  # fmt: skip
    return np.flatnonzero(keep)


def scoped_queries(entries, plan: Plan) -> tuple[list[str], np.ndarray]:
    """The first fold's questions that have an answer, and their entries' indices."""
    by_id = {e["id"]: i for i, e in enumerate(entries)}
    pairs = [(p, i) for i, p in plan.held]
    pairs += [(q, by_id[e]) for q, e in plan.labelled if e in by_id]
    return [q for q, _ in pairs], np.array([i for _, i in pairs], dtype=np.int64)


def every_question(entries, texts: FieldTexts, plan: Plan):
    """(questions, target entries, own columns) of every fold and the labelled questions that
    have an answer; own: the column in `texts` of a held-out paraphrase (-1: a labelled one)."""
    column = {(int(i), t): j for j, (t, i, f) in enumerate(zip(texts.texts, texts.entry,
                                                               texts.field)) if f == 1}  # fmt: skip
    by_id = {e["id"]: i for i, e in enumerate(entries)}
    rows = [(p, i, column[(i, p)]) for fold in plan.folds for i, p in fold]
    rows += [(q, by_id[e], -1) for q, e in plan.labelled if e in by_id]
    return ([q for q, _, _ in rows], np.array([i for _, i, _ in rows], dtype=np.int64),
            np.array([c for _, _, c in rows], dtype=np.int64))  # fmt: skip


@dataclass
class Fit:
    settings: Settings
    calibrator: Calibrator
    threshold: float
    curve: list
    metrics: dict
    baselines: dict


def validate(entries, texts, vectors, plan: Plan, enc, min_precision, seed, notes,
             defaults: Settings, calibrate_on: list[int] | None = None) -> Fit:  # fmt: skip
    """The settings chosen on every fold; the confidence and threshold fitted on the folds
    `calibrate_on` (None: all) — for a tuned encoder, those it neither learned from nor chose
    its weights on (`Plan.calibration_folds`): it is over-confident on the others."""
    if not plan.folds and not plan.labelled:
        return Fit(defaults, DEFAULT_CALIBRATOR, DEFAULT_THRESHOLD, [], {}, {})
    by_id = {e["id"]: i for i, e in enumerate(entries)}
    labelled = [(q, by_id.get(e, -1)) for q, e in plan.labelled]
    parts = [_fold_scores(texts, vectors, fold, labelled if f == 0 else [], enc, seed)
             for f, fold in enumerate(plan.folds or [[]])]  # fmt: skip
    settings, baselines = _choose(parts)
    if calibrate_on is not None:
        parts = [parts[f] for f in calibrate_on if f < len(parts)] or parts[:1]
    sets = [_calibration_set(s, t, settings) for s, t in parts]
    feats, correct, weights, fused = (np.concatenate(x) for x in zip(*sets))
    target = np.concatenate([t for _, t in parts])
    calibrator = Calibrator.fit(feats, correct, seed, weights) or DEFAULT_CALIBRATOR
    if calibrator is DEFAULT_CALIBRATOR:
        notes.append(
            "the validation questions were all answered alike (all right or all "
            "wrong): the default confidence is used"
        )
    conf = calibrator(feats)
    threshold, curve, reached = choose_threshold(conf, correct, min_precision, weights)
    if not reached:
        notes.append(
            f"no confidence threshold reaches the precision {min_precision:g} on "
            f"validation; the threshold of the highest precision is used ({threshold:.3f})"
        )
    asked = np.concatenate([np.arange(len(s[1])) < len(t) for s, (_, t) in zip(sets, parts)])
    metrics = answer_metrics(fused, conf[asked], target, threshold)
    removed = conf[~asked] < threshold
    metrics.update(
        n_validation_queries=len(target),
        n_calibration=len(correct),
        n_folds=len(plan.folds),
        calibrated_on_folds=len(parts),
        handover_own_removed=round(float(removed.mean()), 4) if len(removed) else None,
    )
    return Fit(settings, calibrator, threshold, curve, metrics, baselines)


def _fold_scores(texts, vectors, fold, labelled, enc, seed) -> tuple[Scores, np.ndarray]:
    """The scores of a fold's questions (and `labelled`: (question, entry or -1)) against the
    FAQ without the fold's paraphrases, and their target entries."""
    columns = held_out(texts, fold)
    queries = [p for _, p in fold] + [q for q, _ in labelled]
    target = np.array([i for i, _ in fold] + [i for _, i in labelled], dtype=np.int64)
    qvec = enc.encode(queries)
    sub = texts.subset(np.isin(np.arange(len(texts.texts)), columns))
    centroid = np.clip(qvec @ centroids(vectors[columns], sub).T, 0.0, None)
    head = fit_head(vectors[columns], sub, seed)
    scores = Scores(DenseIndex(vectors[columns]).cosine(qvec), Lexical(sub.texts).raw(queries),
                    sub, centroid, None if head is None else head.proba(qvec))  # fmt: skip
    return scores, target


def _scoped(scores: Scores, target: np.ndarray) -> tuple[Scores, np.ndarray]:
    keep = target >= 0
    return Scores(scores.dense[keep], scores.lexical[keep], scores.texts,
                  None if scores.centroid is None else scores.centroid[keep],
                  None if scores.head is None else scores.head[keep]), target[keep]  # fmt: skip


def _mrr(parts, settings: Settings) -> float:
    return float(np.mean(np.concatenate([1.0 / ranks(s.entries(settings), t) for s, t in parts])))


def _choose(parts: list[tuple[Scores, np.ndarray]]) -> tuple[Settings, dict]:
    """The grid's settings of the best validation MRR over all folds, then the linear head's
    share on them, and the dense-only and BM25-only Hit@1 of the same questions. The defaults
    (and no head) stay unless a change gains more than half a question's worth of MRR (on a
    few dozen questions, smaller gains are noise)."""
    parts = [_scoped(s, t) for s, t in parts]
    parts = [(s, t) for s, t in parts if len(t)]
    if not parts:
        return DEFAULT_SETTINGS, {}
    slack = 0.5 / sum(len(t) for _, t in parts)
    best = DEFAULT_SETTINGS
    best_mrr = _mrr(parts, best) + slack
    for s in _grid():
        mrr = _mrr(parts, s)
        if mrr > best_mrr + 1e-9:
            best, best_mrr = s, mrr
    if all(s.head is not None for s, _ in parts):  # one share at a time on the chosen settings
        best_mrr = _mrr(parts, best) + slack
        for share in HEAD_SHARES:
            s = replace(best, head=share)
            mrr = _mrr(parts, s)
            if mrr > best_mrr + 1e-9:
                best, best_mrr = s, mrr
    base = {}
    for label, alpha in (("dense", 1.0), ("bm25", 0.0)):
        plain = replace(best, alpha=alpha, head=0.0)
        r = np.concatenate([ranks(s.entries(plain), t) for s, t in parts])
        base[label] = {"hit@1": round(float(np.mean(r == 1)), 4),
                       "mrr": round(float(np.mean(1.0 / r)), 4)}  # fmt: skip
    return best, base


def _grid():
    for alpha in GRID["alpha"]:
        for para in GRID["paraphrase"]:
            for ans in GRID["answer"]:
                for cen in GRID["centroid"]:
                    yield Settings(alpha, para, ans, cen)


def _calibration_set(scores: Scores, target: np.ndarray, settings: Settings):
    """(features, right?, weights, fused) of the top answer of every validation question as
    asked, then of every in-scope one again with its own entry removed (a negative, all of
    them weighted to NEGATIVE_SHARE of the set); fused: the scores of the questions as asked."""
    fused = scores.entries(settings)
    top = rank(fused, 1)
    feats = candidate_features(fused, *scores.candidates(top, settings), top)[:, 0, :]
    correct = np.argmax(fused, axis=1) == target
    scoped = np.flatnonzero(target >= 0)
    if not len(scoped):
        return feats, correct, np.ones(len(target)), fused
    own = scores.texts.entry[None, :] == target[scoped, None]
    cen = None if scores.centroid is None else scores.centroid[scoped]
    head = None if scores.head is None else _without_own(scores.head[scoped], target[scoped])
    masked = Scores(np.where(own, 0.0, scores.dense[scoped]),
                    np.where(own, 0.0, scores.lexical[scoped]), scores.texts, cen,
                    head)  # fmt: skip
    mfused = masked.entries(settings)
    mfused[np.arange(len(scoped)), target[scoped]] = -np.inf
    mtop = rank(mfused, 1)
    mfeats = candidate_features(mfused, *masked.candidates(mtop, settings), mtop)[:, 0, :]
    all_feats = np.concatenate([feats, mfeats])
    all_correct = np.concatenate([correct, np.zeros(len(scoped), dtype=bool)])
    w_neg = NEGATIVE_SHARE / (1 - NEGATIVE_SHARE) * len(target) / len(scoped)
    weights = np.concatenate([np.ones(len(target)), np.full(len(scoped), w_neg)])
    return all_feats, all_correct, weights, fused


def _without_own(proba: np.ndarray, own: np.ndarray) -> np.ndarray:
    """The head's probabilities with each row's own entry taken out of the softmax (what a
    head fitted without that entry gives, for a multinomial logistic regression whose other
    weights stay): the mass it held goes to the others, as it would for a question the FAQ
    has no entry for. Left as they were, the negatives looked far easier than they are
    (BANKING77 k = 3, head share 1.0: test precision 0.916 at the threshold)."""
    rows = np.arange(len(own))
    out = proba.copy()
    out[rows, own] = 0.0
    rest = out.sum(axis=1, keepdims=True)
    return np.divide(out, rest, out=np.zeros_like(out), where=rest > 0)
