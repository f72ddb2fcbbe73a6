"""DataArguments through transformers.HfArgumentParser: dashes, repeatable flags, help strings, checks."""

from __future__ import annotations

import dataclasses

import pytest
from transformers import HfArgumentParser

from data.arguments import DataArguments


def test_repeatable_flags_accept_dashes_and_underscores():
    (args,) = HfArgumentParser(DataArguments).parse_args_into_dataclasses([
        "--train-file", "a.csv", "--train_file", "b.csv", "--task", "s:multiclass", "--task", "c:regression",
        "--max-length", "64", "--word-dropout", "0.3", "--weighted-sampling", "s", "--weighted-sampling-mode", "max",
    ])
    assert args.train_file == ["a.csv", "b.csv"]
    assert args.task == ["s:multiclass", "c:regression"]
    assert (args.max_length, args.word_dropout, args.weighted_sampling_mode) == (64, 0.3, "max")
    assert not args.uses_demo


def test_defaults_mean_demo_and_every_field_has_help():
    (args,) = HfArgumentParser(DataArguments).parse_args_into_dataclasses([])
    assert args.uses_demo and args.text_column == "text" and args.max_length == 128 and args.word_dropout == 0.0
    for f in dataclasses.fields(DataArguments):
        assert len(f.metadata.get("help", "")) > 10, f.name


def test_bad_mode_is_rejected_by_the_parser():
    with pytest.raises(SystemExit):
        HfArgumentParser(DataArguments).parse_args_into_dataclasses(["--weighted-sampling-mode", "median"])


@pytest.mark.parametrize("kwargs, fragment", [
    ({"word_dropout": 1.5}, "--word-dropout must be in [0, 1]"),
    ({"validation_split": 0.6, "test_split": 0.5}, "must leave training rows"),
    ({"max_length": 1}, "--max-length must be >= 2"),
])
def test_value_checks_name_the_flag(kwargs, fragment):
    with pytest.raises(ValueError) as err:
        DataArguments(**kwargs)
    assert fragment in str(err.value)
