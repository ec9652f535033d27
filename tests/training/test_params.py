"""train()'s one parameter check (params.py): a declared constraints table, checked before
anything is read or loaded, raising UsageError that names the parameter, what it got and
what is allowed."""

from __future__ import annotations

from numbers import Integral, Real

import pytest

import shipml
from shipml.errors import UsageError
from shipml.params import Interval, Names, Options, check_params

MISSING = "no-such-file.csv"  # the check comes first: the file is never opened


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"time_budget": 0}, "time_budget must be a number > 0; got 0"),
        ({"time_budget": float("nan")}, "time_budget must be a number > 0; got nan"),
        ({"time_budget": "60"}, "time_budget must be a number > 0; got '60'"),
        ({"mode": "bert"},
         "mode must be one of auto, embed, finetune, fewshot, tfidf, scratch; got 'bert'"),
        ({"n_trials": 0}, "n_trials must be None or an integer >= 1; got 0"),
        ({"n_trials": 2.5}, "n_trials must be None or an integer >= 1; got 2.5"),
        ({"seed": True}, "seed must be an integer; got True"),
        ({"task": "ranking"}, "task must be None or one of binary, multiclass, regression"),
        ({"drop": 3}, "drop must be a column name or a list of them; got 3"),
        ({"report": "yes"}, "report must be True or False; got 'yes'"),
        ({"families": 7}, "families must be None or a string or a list or a tuple; got 7"),
    ],
)  # fmt: skip
def test_train_names_the_wrong_parameter_before_reading_anything(option, message):
    with pytest.raises(UsageError) as info:
        shipml.train(MISSING, target="y", **option)
    assert str(info.value).startswith(message)


def test_unknown_family_is_refused_before_reading_anything():
    with pytest.raises(UsageError, match="unknown learner family 'mlpp'; known: linear"):
        shipml.train(MISSING, target="y", families="-mlpp")


def test_usage_errors_are_value_errors_with_a_client_status():
    with pytest.raises(ValueError) as info:  # scikit-learn's convention for bad parameters
        check_params({"k": [Interval(Integral, 1, 10)]}, {"k": 11})
    assert info.value.status == 400
    assert str(info.value) == "k must be an integer >= 1 and <= 10; got 11"


def test_constraints_accept_what_they_declare():
    table = {"x": [Interval(Real, 0, 1, closed="left")], "o": [Options(("a", "b"))],
             "n": [None, Names(single=True)], "f": ["callable"]}  # fmt: skip
    check_params(table, {"x": 0, "o": "b", "n": None, "f": print})
    check_params(table, {"x": 0.999, "n": "age"})
    for bad in ({"x": 1}, {"x": -0.1}, {"o": "c"}, {"n": ["a"]}, {"f": 3}):
        with pytest.raises(UsageError):
            check_params(table, bad)
