"""training.balancing: schedules, DWA and inverse-variance weights against hand computations, and the callback."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from conftest import TOY_TASKS, tiny_backbone_config

from modeling import MultiTaskConfig, MultiTaskModel
from training.arguments import ArgumentError
from training.balancing import TaskBalancingCallback, dwa_weights, parse_schedule, parse_task_schedules


def test_schedules_interpolate_between_breakpoints_and_hold_outside():
    ramp = parse_schedule("0.2:0,0.6:1", "--task-weight-schedule")
    assert [ramp.at(f, 0) for f in (0.0, 0.2, 0.4, 0.6, 1.0)] == pytest.approx([0, 0, 0.5, 1, 1])
    epochs = parse_schedule("0ep:0.1,2ep:0.3", "--dropout-schedule", upper=1.0)
    assert epochs.epochs and epochs.at(0.99, 1.0) == pytest.approx(0.2)
    assert parse_task_schedules(["vad=0:0,1:2"], ["vad", "emo"])["vad"].at(0.25, 0) == pytest.approx(0.5)


@pytest.mark.parametrize("text, message", [
    ("0.5:1,0.2:0", "progress must increase"),
    ("0:1,0:2", "progress must increase"),
    ("0:0,1ep:1", "mixes fractions of the steps and epochs"),
    ("0:0,2:1", "fractions of the steps go from 0 to 1"),
    ("0:-1", "needs progress >= 0"),
    ("half:1", "is not PROGRESS:VALUE"),
])
def test_bad_schedules_are_one_line(text, message):
    with pytest.raises(ArgumentError, match=message):
        parse_schedule(text, "--task-weight-schedule")


def test_dropout_above_one_and_unknown_tasks_are_refused():
    with pytest.raises(ArgumentError, match=r"value in \[0, 1.0\)"):
        parse_schedule("0:0.1,1:1.0", "--dropout-schedule", upper=1.0)
    with pytest.raises(ArgumentError, match="unknown task 'vda'; tasks are"):
        parse_task_schedules(["vda=0:0,1:1"], ["vad"])


def test_dwa_matches_the_formula():
    weights = dwa_weights({"a": [1.0, 0.5], "b": [2.0, 2.0]}, temperature=2.0)
    ea, eb = math.exp(0.5 / 2), math.exp(1.0 / 2)
    assert weights == pytest.approx({"a": 2 * ea / (ea + eb), "b": 2 * eb / (ea + eb)})
    assert sum(weights.values()) == pytest.approx(2.0)
    assert dwa_weights({"a": [1.0], "b": [1.0, 2.0]}, 2.0) == {"a": 1.0, "b": 1.0}  # one interval: equal


def model() -> MultiTaskModel:
    torch.manual_seed(0)
    return MultiTaskModel(MultiTaskConfig(encoder_config=tiny_backbone_config(), tasks=TOY_TASKS, head_dropout=0.1))


def history(*steps):
    return [{"step": step, "loss_topic": topic, "loss_score": score} for step, topic, score in steps]


def test_callback_updates_weights_and_applies_schedules_before_each_step():
    callback = TaskBalancingCallback("inverse_variance", interval=2, window=10, schedules=["score=0:0,1:1"],
                                     dropout_schedule="0:0.1,1:0.3")
    net = model()
    state = SimpleNamespace(global_step=4, max_steps=8, epoch=0.5,
                            log_history=history((1, 1.0, 3.0), (2, 3.0, 3.1), (3, 1.5, 3.0), (4, 2.5, 3.2)))
    callback.on_log(None, state, None)
    inverse_topic, inverse_score = 3 / 2.5, 3 / 0.0275  # 1 / sample variance of each task's four logged losses
    expected = {"topic": 2 * inverse_topic / (inverse_topic + inverse_score),
                "score": 2 * inverse_score / (inverse_topic + inverse_score)}  # normalised to mean 1
    assert callback.balance == pytest.approx(expected) and callback.last_update == 4
    callback.on_step_begin(None, state, None, model=net)
    assert net.weight_multipliers["topic"] == pytest.approx(expected["topic"])
    assert net.weight_multipliers["score"] == pytest.approx(expected["score"] * 0.5)  # halfway up its ramp
    assert net.weight_multipliers["flags"] == 1.0
    assert [m.p for m in net.heads.modules() if isinstance(m, torch.nn.Dropout)] == pytest.approx([0.2] * 12)
    assert net.task_weights()["score"] == pytest.approx(expected["score"] * 0.5)


def test_callback_state_holds_what_resume_needs():
    """What the checkpoint stores (the resume test checks that transformers puts it back)."""
    callback = TaskBalancingCallback("dwa", interval=3, temperature=1.5, schedules=["topic=0:1,1:2"])
    callback.balance, callback.means, callback.last_update = {"topic": 1.2}, {"topic": [0.9, 0.8]}, 6
    saved = callback.state()
    assert saved["attributes"] == {"balance": {"topic": 1.2}, "means": {"topic": [0.9, 0.8]}, "last_update": 6}
    assert json.loads(json.dumps(saved)) == saved  # it travels in the checkpoint as JSON
    rebuilt = TaskBalancingCallback(**saved["args"])  # the arguments are the constructor's
    assert (rebuilt.strategy, rebuilt.interval, rebuilt.temperature) == ("dwa", 3, 1.5)
    assert rebuilt._parsed["topic"].at(0.5, 0) == pytest.approx(1.5)
