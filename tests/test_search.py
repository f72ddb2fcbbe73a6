"""training.search: the objective, the search flags, and the trial helpers."""

from __future__ import annotations

import math

import pytest

from training.arguments import ArgumentError
from training.search import Objective, SearchArguments, parse_objective, with_objective

TASKS = [{"name": "mood", "type": "multiclass"}, {"name": "tags", "type": "multilabel"},
         {"name": "vad", "type": "regression"}]


def test_objective_forms_and_directions():
    assert parse_objective("score", TASKS) == Objective((("score", 1.0),), "maximize")
    assert parse_objective("mood:macro_f1", TASKS) == Objective((("mood_macro_f1", 1.0),), "maximize")
    assert parse_objective("vad:mae", TASKS).direction == "minimize"
    mix = parse_objective("mood:macro_f1=0.7,vad:ccc=0.3", TASKS)
    assert mix.value({"eval_mood_macro_f1": 0.5, "eval_vad_ccc": 0.9}) == pytest.approx(0.62)
    assert mix.value({"eval_mood_macro_f1": 0.5}) == -math.inf  # an undefined metric is the worst value
    assert parse_objective("vad:mse", TASKS).value({}) == math.inf


@pytest.mark.parametrize("text, message", [
    ("emotions:macro_f1", "unknown task 'emotions'; tasks are ['mood', 'tags', 'vad']"),
    ("mood:ccc", "'ccc' is not a metric of multiclass task 'mood'"),
    ("mood:macro_f1,vad:mae", "metrics that all go the same way"),
    ("mood:macro_f1=high", "weight 'high' is not a number"),
])
def test_a_bad_objective_is_one_line(text, message):
    with pytest.raises(ArgumentError, match=f"--objective {text!r}: .*{message[:20]}"):
        parse_objective(text, TASKS)


def test_metrics_carry_the_objective():
    compute = with_objective(lambda _: {"score": 0.4, "mood_macro_f1": 0.3}, parse_objective("score", TASKS))
    assert compute(None)["objective"] == 0.4


@pytest.mark.parametrize("kwargs, message", [
    ({"n_trials": 0}, "--n-trials 0: must be >= 1"), ({"pruner": "asha"}, "--pruner 'asha'"),
    ({"evals_per_epoch": 0}, "--evals-per-epoch"),
])
def test_search_flags_are_checked(kwargs, message):
    with pytest.raises(ArgumentError, match=message):
        SearchArguments(**kwargs)
    assert SearchArguments(no_pruning=True).pruner == "none"
