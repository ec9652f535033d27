"""`shipml retrain` of an answer model: questions that feedback confirmed become paraphrases.

A question counts as confirmed when the answer it got was marked helpful (its entry), or when the
feedback named the right entry. The newest share of the confirmed questions (20 % by default) is
kept out when there are enough of them: both versions answer those, so the comparison is on real
questions neither saw as paraphrases. The rest go to `AnswerModel.with_paraphrases` (same
settings, calibration and threshold; only the new texts are encoded) and the result is a new
version of the model, promoted like any other (`shipml models promote`). Nothing is promoted
here.
"""

from __future__ import annotations

from shipml.errors import DataError

__all__ = ["retrain_answerer", "register_answerer"]

_MIN_COMPARE = 10


def retrain_answerer(current, info, reg, *, data=None, compare_share: float = 0.2,
                     progress=None):  # fmt: skip
    """A new version of the answer model `current` (registered as `info`) with the questions
    confirmed by feedback as paraphrases of their entries."""
    from shipml.monitor.answer import confirmed_pairs, read_answers
    from shipml.retrain import Retrained

    if data is not None:
        raise DataError("an answer model retrains on its feedback only: to change the FAQ, "
                        f"train it again (shipml train FAQ.csv --task answer --name "
                        f"{info.name}); that is a new version too")  # fmt: skip
    if not 0 <= compare_share < 1:
        raise DataError(f"compare_share must be in [0, 1), got {compare_share}")
    known = {str(e["id"]) for e in current.entries}
    pairs, unknown = [], 0
    for question, entry in confirmed_pairs(read_answers(reg.engine, info.name)):
        if entry in known:
            pairs.append((question, entry))
        else:
            unknown += 1
    if not pairs:
        raise DataError(f"no feedback on the answers of {info.name!r} confirms a question yet: "
                        'send {"prediction_id": ..., "helpful": true} or {"entry": "<right '
                        'id>"} to POST /v1/feedback for answers the server gave')  # fmt: skip
    train, compare, notes = _held_out(pairs, compare_share)
    if unknown:
        notes.append(f"{unknown} confirmed question(s) name entries this version does not have")
    additions: dict[str, list[str]] = {}
    for question, entry in train:
        additions.setdefault(entry, []).append(question)
    new = current.with_paraphrases(additions)
    new.info.setdefault("notes", []).append(
        f"retrained from version {info.version}: {len(train):,} confirmed question(s) added as "
        "paraphrases"
    )
    registered = register_answerer(new, info, reg)
    result = Retrained(name=info.name, current=info.version, new=registered.version,
                       rows_original=len(current.entries), rows_feedback_train=len(train),
                       rows_feedback_compare=len(compare), notes=notes,
                       model=new)  # fmt: skip
    result.offline = {str(info.version): _numbers(current.metrics),
                      str(registered.version): _numbers(new.metrics)}  # fmt: skip
    if compare:
        questions, expected = [q for q, _ in compare], [e for _, e in compare]
        for label, model in ((str(info.version), current), (str(registered.version), new)):
            result.recent[label] = _numbers(model.evaluate_lists(questions, expected))
    return result


def _held_out(pairs: list, share: float):
    """(pairs to add, the newest `share` to compare on, notes); pairs are oldest first."""
    n_compare = int(round(len(pairs) * share))
    if n_compare < _MIN_COMPARE:
        note = (f"only {len(pairs)} confirmed question(s): all are added as paraphrases, and "
                "the comparison is on each version's validation scores only")  # fmt: skip
        return pairs, [], [note]
    return pairs[:-n_compare], pairs[-n_compare:], []


def _numbers(metrics: dict) -> dict:
    return {k: v for k, v in (metrics or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}  # fmt: skip


def register_answerer(model, info, reg):
    """Write `model` as a new version of `info.name` (files + manifest, then the row)."""
    writer = reg.writer()
    try:
        model.write(writer)
        writer.finish()
        lineage = dict(model.info.get("lineage") or {}, retrained_from=info.version)
        registered = reg.register(info.name, writer, task="answer", metrics=model.metrics,
                                  lineage=lineage, schema=info.schema)  # fmt: skip
    except BaseException:
        writer.abort()
        raise
    model.info.update(name=registered.name, version=registered.version)
    return registered
