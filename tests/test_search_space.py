"""training.search_space: the default space, checked spaces from files, and what a trial's values change."""

from __future__ import annotations

import pytest

from data.arguments import DataArguments
from training.arguments import ArgumentError
from training.search_space import (
    DEFAULT_SPACE,
    as_flag_value,
    check_space,
    data_arguments_for_space,
    load_space,
    split_params,
)


def test_the_default_space_is_valid_and_names_only_flags():
    space = load_space()
    assert set(space) == set(DEFAULT_SPACE)
    assert space["learning_rate"].log and space["pooling"].choices[0] == "mean"


@pytest.mark.parametrize("content, message", [
    ("lr: {type: float, low: 1.0e-5, high: 1.0e-3}", "unknown parameter(s) ['lr']"),
    ("dropout: {type: float, low: 0.3, high: 0.1}", "dropout: empty range, low 0.3 must be < high 0.1"),
    ("learning_rate: {type: float, low: 0, high: 1.0e-3, log: true}", "a log range needs low > 0"),
    ("pooling: {type: categorical, choices: []}", "needs a non-empty list of choices"),
    ("dropout: {type: uniform, low: 0, high: 1}", "expected {type: float|int|categorical"),
    ("dropout: {type: float, low: 0, high: 0.3, step: 0.1, prior: x}", "unknown key(s) ['prior']"),
    ("dropout: {type: float, low: 0}", "needs finite numbers low and high"),
    ("[1, 2]", "expected a mapping of flag names to ranges"),
    ("a: [", "cannot be read"),
])
def test_a_bad_space_is_one_line(tmp_path, content, message):
    path = tmp_path / "space.yaml"
    path.write_text(content)
    with pytest.raises(ArgumentError) as error:
        load_space(str(path))
    assert str(error.value).startswith(f"--search-space {path}: ") and message in str(error.value)


def test_freeze_layers_beyond_the_encoder_is_fitted_in_the_default_space_and_refused_in_a_given_one(tmp_path):
    space = load_space()
    assert check_space(space, depth=2, given=False)["freeze_layers"].high == 2
    with pytest.raises(ArgumentError, match="freeze_layers reaches 4, but the encoder has 2 layers"):
        check_space(space, depth=2, given=True)
    assert check_space(space, depth=6, given=True) is space


def test_values_split_by_where_they_apply_and_head_sizes_parse():
    model, data, training = split_params({"pooling": "cls", "word_dropout": 0.1, "head_lr": 1e-3,
                                          "weighted_sampling": True, "freeze_strategy": "full"})
    assert model == {"pooling": "cls"} and data == {"word_dropout": 0.1, "weighted_sampling": True}
    assert training == {"head_lr": 1e-3, "freeze_strategy": "full"}
    assert as_flag_value("head_hidden_dims", "256 128") == [256, 128] and as_flag_value("head_hidden_dims", "") == []


def test_searched_augmentation_prepares_the_transform():
    args = data_arguments_for_space(load_space(), DataArguments())
    assert args.word_dropout == DEFAULT_SPACE["word_dropout"]["high"]
    assert data_arguments_for_space({}, DataArguments()).word_dropout == 0.0
