"""training.ensemble and modeling.ensemble_multitask: the selection against a hand-computed case, the combination,
and the ensemble model's config, weights and round trip."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import TOY_TASKS, tiny_backbone_config

from modeling import MultiTaskConfig, MultiTaskEnsembleConfig, MultiTaskEnsembleModel, MultiTaskModel
from modeling.ensemble_multitask import combine
from training.ensemble import ensemble_logits, greedy_selection, member_outputs, selection_weights

BINARY = {"name": "flag", "type": "binary", "labels": ["no", "yes"]}


def logit(p):
    p = np.asarray(p, dtype=np.float64)
    return np.log(p) - np.log1p(-p)


def test_greedy_selection_matches_the_hand_computed_case():
    """Labels 1 1 0 0. A finds the first positive, B the second, C calls everything positive: alone, each has
    F1 2/3 (a tie: A, the first). A+B finds both (F1 1): B joins. Then every addition keeps F1 1: ties go to A."""
    labels = np.array([1.0, 1.0, 0.0, 0.0])
    members = [logit([0.9, 0.4, 0.1, 0.1]), logit([0.4, 0.9, 0.1, 0.1]), logit([0.9, 0.9, 0.9, 0.9])]
    outputs = [member_outputs(BINARY, m) for m in members]
    assert greedy_selection(BINARY, outputs, labels, rounds=1).tolist() == [1, 0, 0]
    assert greedy_selection(BINARY, outputs, labels, rounds=2).tolist() == [1, 1, 0]
    assert greedy_selection(BINARY, outputs, labels, rounds=4).tolist() == [3, 1, 0]
    assert selection_weights(BINARY, members, labels, rounds=4, bags=0) == pytest.approx([0.75, 0.25, 0.0])
    bagged = selection_weights(BINARY, members, labels, rounds=4, bags=10, seed=0)
    assert sum(bagged) == pytest.approx(1.0) and bagged == selection_weights(BINARY, members, labels, 4, 10, 0)


@pytest.mark.parametrize("task", TOY_TASKS, ids=lambda t: t["type"])
def test_the_numpy_combination_equals_the_model_combination(task):
    rng = np.random.default_rng(0)
    width = {"multiclass": 3, "multilabel": 3, "binary": None, "regression": 1}[task["type"]]
    shape = (5,) if width is None else (5, width)
    members = [rng.normal(size=shape).astype(np.float32) for _ in range(3)]
    weights = [0.5, 0.3, 0.2]
    expected = combine(task, [torch.from_numpy(m) for m in members], weights).numpy()
    np.testing.assert_allclose(ensemble_logits(task, members, weights), expected, rtol=1e-5, atol=1e-5)


def member(seed: int, pooling: str = "mean") -> MultiTaskModel:
    torch.manual_seed(seed)
    return MultiTaskModel(MultiTaskConfig(encoder_config=tiny_backbone_config(), tasks=TOY_TASKS, pooling=pooling,
                                          head_hidden_dims=[16])).eval()


def test_config_checks_members_tasks_and_weights():
    a, b = member(0), member(1)
    config = MultiTaskEnsembleConfig(members=[a.config, b.config], weights={"topic": [3, 1]})
    assert config.weights["topic"] == [0.75, 0.25] and config.weights["spam"] == [0.5, 0.5]
    with pytest.raises(ValueError, match="at least 2 members"):
        MultiTaskEnsembleConfig(members=[a.config])
    with pytest.raises(ValueError, match=r"weights\['topic'\]: expected 2 numbers"):
        MultiTaskEnsembleConfig(members=[a.config, b.config], weights={"topic": [1.0]})
    other = member(2).config.to_dict()
    other["tasks"] = TOY_TASKS[:2]
    with pytest.raises(ValueError, match=r"members\[1\]: predicts other tasks or labels"):
        MultiTaskEnsembleConfig(members=[a.config, other])


def test_trained_members_keep_their_weights_and_the_ensemble_averages_them():
    a, b = member(0), member(1, pooling="cls")
    before = {k: v.clone() for k, v in b.state_dict().items()}
    config = MultiTaskEnsembleConfig(members=[a.config, b.config], weights={"topic": [1.0, 0.0]})
    ensemble = MultiTaskEnsembleModel(config, members=[a, b]).eval()
    assert all(torch.equal(before[k], v) for k, v in ensemble.members[1].state_dict().items())
    ids = torch.randint(5, 99, (2, 6))
    with torch.no_grad():
        out, only_a = ensemble(input_ids=ids).logits, a(input_ids=ids).logits
    torch.testing.assert_close(torch.softmax(out["topic"], -1), torch.softmax(only_a["topic"], -1))


LOADER = textwrap.dedent("""
    import importlib.util, sys
    import torch
    from transformers import AutoModel
    assert importlib.util.find_spec("modeling") is None
    model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
    ids = torch.load(sys.argv[2])
    with torch.no_grad():
        torch.save(model(input_ids=ids).logits, sys.argv[2] + ".out")
    print(type(model).__name__, len(model.members))
""")


def test_save_and_load_in_a_fresh_process_without_the_repo(tmp_path):
    ensemble = MultiTaskEnsembleModel(MultiTaskEnsembleConfig(members=[member(0).config, member(1).config]),
                                      members=[member(0), member(1)]).eval()
    ensemble.save_pretrained(tmp_path / "ensemble")
    ids = torch.randint(5, 99, (3, 7))
    torch.save(ids, tmp_path / "ids.pt")
    result = subprocess.run([sys.executable, "-c", LOADER, str(tmp_path / "ensemble"), str(tmp_path / "ids.pt")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["MultiTaskEnsembleModel", "2"]
    loaded = torch.load(tmp_path / "ids.pt.out")
    with torch.no_grad():
        expected = ensemble(input_ids=ids).logits
    for name, value in expected.items():
        assert torch.equal(loaded[name], value), name
