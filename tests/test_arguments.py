"""Flags of the training scripts: the seeds' spellings, aliases, config files and one-line refusals."""

from __future__ import annotations

import dataclasses

import pytest

from training.arguments import ArgumentError, ModelArguments, parse_unfreeze_schedule
from training.recipe import parse_arguments

SEED_FLAGS = [
    "--backbone", "minilm", "--freeze-strategy", "progressive", "--freeze-layers", "3",
    "--unfreeze-schedule", "1:2,2:4,3:all", "--pooling", "attention", "--dropout", "0.2",
    "--head-hidden-dims", "512", "256", "128", "--use-focal-loss", "--focal-gamma", "1.5", "--label-smoothing", "0.1",
    "--class-weights", "--use-uncertainty-weighting", "--task-weight", "emotions=2", "--task-weight", "vad=0.5",
    "--epochs", "4", "--batch-size", "16", "--lr", "3e-5", "--backbone-lr", "2e-5", "--head-lr", "1e-3",
    "--layer-lr-decay", "0.9", "--weight-decay", "0.02", "--max-grad-norm", "0.5", "--scheduler", "plateau",
    "--warmup-ratio", "0.1", "--patience", "2", "--min-delta", "0.001", "--word-dropout", "0.1",
    "--weighted-sampling", "emotions", "--gradient-accumulation-steps", "2", "--seed", "7",
    "--output-dir", "out/x", "--hub-model-id", "me/model",
]


def test_seed_flags_parse_to_their_fields(tmp_path):
    model_args, data_args, args = parse_arguments(SEED_FLAGS)
    assert model_args.head_hidden_dims == [512, 256, 128]
    assert model_args.use_focal_loss and model_args.class_weights and model_args.loss_weighting == "uncertainty"
    assert dataclasses.replace(model_args, loss_weighting="dwa").loss_weighting == "dwa"  # alias consumed (search)
    assert model_args.parsed_task_weights() == {"emotions": 2.0, "vad": 0.5}
    assert (args.num_train_epochs, args.per_device_train_batch_size, args.learning_rate) == (4, 16, 3e-5)
    assert (args.backbone_lr, args.head_lr, args.layer_lr_decay) == (2e-5, 1e-3, 0.9)
    assert args.lr_scheduler_type == "reduce_lr_on_plateau"
    assert args.warmup_steps == 0.1 and args.gradient_accumulation_steps == 2 and args.seed == 7
    assert args.unfreeze_plan == {1: 2, 2: 4, 3: "all"}
    assert (args.patience, args.min_delta, args.max_grad_norm, args.weight_decay) == (2, 0.001, 0.5, 0.02)
    assert data_args.word_dropout == 0.1 and data_args.weighted_sampling == "emotions"
    assert args.output_dir == "out/x" and args.hub_model_id == "me/model"


def test_config_file_gives_defaults_and_flags_win(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("freeze-strategy: partial\nfreeze_layers: 4\nepochs: 3\npooling: max\n")
    model_args, _, args = parse_arguments(["--config", str(config), "--freeze-layers", "1"])
    assert args.freeze_strategy == "partial" and args.freeze_layers == 1
    assert model_args.pooling == "max"


def test_config_file_with_unknown_key_names_it(tmp_path):
    config = tmp_path / "run.json"
    config.write_text('{"freeze_stratgy": "partial"}')
    with pytest.raises(ArgumentError, match="freeze_stratgy"):
        parse_arguments(["--config", str(config)])


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--scheduler", "warp"], "--scheduler 'warp'"),
        (["--freeze-strategy", "half"], "--freeze-strategy 'half'"),
        (["--fp16"], "--fp16 needs a CUDA GPU"),
        (["--layer-lr-decay", "1.5"], "--layer-lr-decay"),
        (["--freeze-strategy", "progressive", "--unfreeze-schedule", "1:4,2:2"], "must not shrink"),
        (["--freeze-strategy", "progressive", "--unfreeze-schedule", "one:two"], "is not EPOCH:LAYERS"),
    ],
)
def test_bad_flags_are_refused_with_the_flag_named(flags, message):
    with pytest.raises(ArgumentError, match=message):
        parse_arguments(flags)


def test_task_weight_syntax_is_checked():
    with pytest.raises(ArgumentError, match="NAME=W"):
        ModelArguments(task_weight=["emotions:2"]).parsed_task_weights()


def test_unfreeze_schedule_parses_all():
    assert parse_unfreeze_schedule("2:1, 4:all") == {2: 1, 4: "all"}
