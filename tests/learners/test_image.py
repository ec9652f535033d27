"""The image features step: which training rows fit the budget (stratified, exact)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DATA
from shipml.learners.image import rows_that_fit


def test_all_rows_when_they_fit_and_a_stratified_sample_when_not():
    y = np.array([0] * 80 + [1] * 20)
    assert len(rows_that_fit(y, "binary", seconds=10.0, per_row=0.1, seed=0)) == 100
    keep = rows_that_fit(y, "binary", seconds=5.0, per_row=0.1, seed=0)
    assert len(keep) == 50 and list(keep) == sorted(keep)
    assert (y[keep] == 1).sum() == 10  # the classes keep their shares


def test_every_class_keeps_a_few_rows_however_short_the_budget():
    y = np.array([0] * 98 + [1, 2])
    keep = rows_that_fit(y, "multiclass", seconds=0.1, per_row=1.0, seed=0)
    assert set(y[keep]) == {0, 1, 2}


def test_a_stray_unreadable_file_is_left_out_many_are_an_error():
    import pandas as pd

    from shipml.errors import DataError
    from shipml.learners.image import readable_rows

    good = sorted(str(p) for p in (DATA / "images" / "defects" / "ok").glob("*.*"))[:20]
    bad = [str(DATA / "images" / "bad" / n) for n in ("not_an_image.jpg", "empty.png")]
    mask, notes = readable_rows(pd.DataFrame({"image": good + bad[:1]}), ["image"])
    assert mask.tolist() == [True] * 20 + [False]
    assert "not_an_image.jpg" in notes[0] and "left out 1" in notes[0]
    with pytest.raises(DataError, match="2 of 22 images cannot be read.*not_an_image"):
        readable_rows(pd.DataFrame({"image": good + bad}), ["image"])
    mask, notes = readable_rows(pd.DataFrame({"image": good[:3] + [None]}), ["image"])
    assert mask.all() and notes == []


def test_embedding_stops_at_its_deadline_with_every_class_kept():
    """A misjudged speed: the clock passes `stop_at` after two chunks; what was embedded is
    kept (a few of every class first), in the table's order, never a failed run."""
    import pandas as pd

    from shipml.learners.image import _CHUNK, _embed_in_order

    class Features:
        def transform(self, typed):
            return typed[["v"]].to_numpy(dtype=float)

    ticks = iter(range(1000))
    y = np.repeat([0, 1, 2], 60)
    typed = pd.DataFrame({"v": np.arange(len(y), dtype=float)})
    done, X = _embed_in_order(Features(), typed, y, 0, stop_at=0.5, clock=lambda: next(ticks))
    assert len(done) == 2 * _CHUNK and np.all(np.diff(done) > 0)
    assert X[:, 0].tolist() == done.tolist()  # each row's own features, in order
    assert set(y[done]) == {0, 1, 2} and min(np.bincount(y[done])) >= 2
    done, _ = _embed_in_order(Features(), typed, y, 0, stop_at=1e9, clock=lambda: 0.0)
    assert done.tolist() == list(range(len(y)))
