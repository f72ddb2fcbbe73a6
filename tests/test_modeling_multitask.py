"""MultiTaskModel: every pooling x task type, losses and masking, freezing, encoder access, loading and saving."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import TINY, tiny_backbone_config
from torch import nn

from modeling import MultiTaskConfig, MultiTaskModel, label_key
from modeling.configuration_multitask import POOLING_OPTIONS
from modeling.losses import masked_cross_entropy, masked_mse

TASKS = [
    {"name": "emotion", "type": "multiclass", "labels": ["anger", "joy", "sadness"]},
    {"name": "tags", "type": "multilabel", "labels": ["a", "b", "c", "d"]},
    {"name": "flag", "type": "binary", "labels": ["no", "yes"], "loss": "focal"},
    {"name": "vad", "type": "regression", "labels": ["V", "A", "D"], "target_mean": [3.0, 3.0, 3.0],
     "target_std": [0.5, 0.5, 0.5]},
]
NAN = math.nan


def build(kind: str = "bert", tasks=TASKS, seed: int = 0, **kwargs) -> MultiTaskModel:
    torch.manual_seed(seed)
    return MultiTaskModel(MultiTaskConfig(encoder_config=tiny_backbone_config(kind), tasks=tasks, **kwargs))


def batch(batch_size: int = 4, length: int = 7, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch_size, length, dtype=torch.long)
    mask[0, length - 3:] = 0
    return {"input_ids": torch.randint(5, 99, (batch_size, length), generator=generator), "attention_mask": mask}


def labels(missing: bool = False) -> dict[str, torch.Tensor]:
    if missing:
        return {label_key("emotion"): torch.full((4,), -100), label_key("tags"): torch.full((4, 4), -100.0),
                label_key("flag"): torch.full((4,), -100.0), label_key("vad"): torch.full((4, 3), NAN)}
    return {
        label_key("emotion"): torch.tensor([0, 2, -100, 1]),
        label_key("tags"): torch.tensor([[1.0, 0, 0, 1], [0, 0, 0, 0], [-100, -100, -100, -100], [1, 1, -100, 0]]),
        label_key("flag"): torch.tensor([1.0, 0.0, -100.0, 1.0]),
        label_key("vad"): torch.tensor([[3.2, 2.9, NAN], [NAN, NAN, NAN], [4.0, 1.5, 2.5], [3.0, 3.0, 3.0]]),
    }


@pytest.mark.parametrize("pooling", POOLING_OPTIONS)
def test_every_pooling_and_task_type_trains(pooling, backbone_kind):
    model = build(backbone_kind, pooling=pooling, head_residual=pooling == "mean_max")
    out = model(**batch(), **labels())
    assert out.logits["emotion"].shape == (4, 3) and out.logits["tags"].shape == (4, 4)
    assert out.logits["flag"].shape == (4,) and out.logits["vad"].shape == (4, 3)
    assert out.pooled_output.shape == (4, 64 if pooling == "mean_max" else 32)
    assert set(out.task_losses) == {"emotion", "tags", "flag", "vad"} and out.log_variances is None
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert torch.allclose(out.loss, sum(out.task_losses.values()))
    out.loss.backward()
    grads = {
        "embeddings": next(model.get_encoder_embeddings().parameters()).grad,
        "first layer": next(model.get_encoder_layers()[0].parameters()).grad,
        **{f"head {n}": model.heads[n].output.weight.grad for n in model.config.task_names},
        **{f"pooler {n}": p.grad for n, p in model.pooler.named_parameters()},
    }
    for where, grad in grads.items():
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, where


def test_regression_predictions_come_back_in_user_units():
    tasks = [{"name": "vad", "type": "regression", "labels": ["V", "A"], "target_mean": [3.0, 1.0],
              "target_std": [2.0, 0.5]},
             {"name": "rating", "type": "regression", "labels": ["r"], "output_range": [1.0, 5.0]}]
    model = build(tasks=tasks).eval()
    with torch.no_grad():
        model.heads["vad"].output.weight.zero_()
        model.heads["vad"].output.bias.copy_(torch.tensor([1.0, -2.0]))  # standardised z
        model.heads["rating"].output.bias.fill_(1e4)
    targets = torch.tensor([[5.0, NAN], [1.0, 0.0], [NAN, NAN], [3.0, 1.5]])
    out = model(**batch(), labels_vad=targets, labels_rating=torch.full((4, 1), 2.0))
    assert torch.allclose(out.logits["vad"], torch.tensor([[5.0, 0.0]]).expand(4, 2))  # z * std + mean
    assert (out.logits["rating"] <= 5.0).all() and (out.logits["rating"] >= 1.0).all()
    z = torch.tensor([[1.0, -2.0]]).expand(4, 2)
    expected = masked_mse(z, (targets - torch.tensor([3.0, 1.0])) / torch.tensor([2.0, 0.5]))
    assert torch.allclose(out.task_losses["vad"], expected)


def test_gaussian_nll_head_predicts_log_variance():
    tasks = [{"name": "vad", "type": "regression", "labels": ["V", "A", "D"], "loss": "gaussian_nll"}]
    model = build(tasks=tasks)
    out = model(**batch(), labels_vad=torch.tensor([[1.0, 2.0, NAN]] * 4))
    assert out.log_variances["vad"].shape == (4, 3) and out.logits["vad"].shape == (4, 3)
    out.loss.backward()
    assert model.heads["vad"].output.weight.grad[3:].abs().sum() > 0  # the log-variance outputs learn


def test_masked_rows_match_the_labelled_subset():
    model = build().eval()
    inputs = batch()
    out = model(**inputs, labels_emotion=torch.tensor([0, -100, 2, -100]))
    expected = masked_cross_entropy(out.logits["emotion"][[0, 2]], torch.tensor([0, 2]))
    assert torch.allclose(out.task_losses["emotion"], expected)


@pytest.mark.parametrize("weighting", ["fixed", "uncertainty"])
def test_all_missing_batch_gives_zero_loss_and_finite_gradients(weighting):
    model = build(loss_weighting=weighting)
    out = model(**batch(), **labels(missing=True))
    assert out.loss.item() == 0.0 and out.loss.requires_grad
    assert all(value.item() == 0.0 for value in out.task_losses.values())
    out.loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is None or torch.isfinite(param.grad).all(), name


def test_uncertainty_log_variances_are_trained_parameters():
    model = build(loss_weighting="uncertainty")
    log_vars = model.uncertainty.log_variances
    assert any(p is log_vars for p in model.parameters())
    assert "uncertainty.log_variances" in model.state_dict()
    some = labels()
    some[label_key("flag")] = torch.full((4,), -100.0)  # no label for `flag` in this batch
    out = model(**batch(), **some)
    out.loss.backward()
    index = model.config.task_names.index
    assert log_vars.grad[index("emotion")] != 0 and log_vars.grad[index("vad")] != 0
    assert log_vars.grad[index("flag")] == 0
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert not torch.equal(log_vars.detach(), torch.zeros(4))
    assert set(model.task_weights()) == set(model.config.task_names)


def test_fixed_weights_scale_task_losses():
    tasks = [{**TASKS[0], "weight": 2.0}, {**TASKS[3], "weight": 0.5}]
    out = build(tasks=tasks)(**batch(), **{k: v for k, v in labels().items() if k in ("labels_emotion", "labels_vad")})
    assert torch.allclose(out.loss, 2.0 * out.task_losses["emotion"] + 0.5 * out.task_losses["vad"])
    assert out.task_losses.keys() == {"emotion", "vad"}


def test_bad_forward_arguments():
    model = build()
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['labels'\]; .* label keys"):
        model(**batch(), labels=torch.zeros(4))
    with pytest.raises(TypeError, match=r"\['output_hiden_states'\]"):
        model(**batch(), output_hiden_states=True)
    with pytest.raises(ValueError, match=r"labels_emotion: expected shape \(4,\) for a multiclass task"):
        model(**batch(), labels_emotion=torch.zeros(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="the config has no tasks"):
        MultiTaskModel(MultiTaskConfig(encoder_config=tiny_backbone_config("bert")))


def test_output_flags_reach_the_encoder_and_return_dict_false_gives_a_tuple():
    model = build(attn_implementation="eager").eval()
    plain = model(**batch())
    assert plain.hidden_states is None and plain.attentions is None
    full = model(**batch(), output_hidden_states=True, output_attentions=True)
    assert len(full.hidden_states) == TINY["num_hidden_layers"] + 1 and full.hidden_states[-1].shape == (4, 7, 32)
    assert len(full.attentions) == TINY["num_hidden_layers"] and full.attentions[0].shape == (4, 2, 7, 7)
    as_tuple = model(**batch(), **labels(), return_dict=False)
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], model(**batch(), **labels()).loss)
    assert torch.equal(as_tuple[1]["emotion"], plain.logits["emotion"])
    model.config.return_dict = False
    assert isinstance(model(**batch()), tuple)


def test_pooled_output_input_skips_encoder_and_pooling():
    model = build().eval()
    out = model(**batch(), **labels())
    again = model(pooled_output=out.pooled_output, **labels())
    assert torch.equal(again.loss, out.loss) and again.hidden_states is None
    for name, value in out.logits.items():
        assert torch.equal(again.logits[name], value)


def test_padding_does_not_change_the_model_output():
    model = build(pooling="max").eval()
    ids = torch.randint(5, 99, (1, 5))
    alone = model(input_ids=ids, attention_mask=torch.ones(1, 5, dtype=torch.long))
    padded_ids = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1] * 5 + [0] * 4])
    padded = model(input_ids=padded_ids, attention_mask=mask)
    assert torch.allclose(alone.pooled_output, padded.pooled_output, atol=1e-5)
    assert torch.allclose(alone.logits["emotion"], padded.logits["emotion"], atol=1e-5)


def test_trainer_sees_a_logits_dict():
    model = build().eval()
    out = model(**batch(), **labels())
    ignore = model.config.keys_to_ignore_at_inference
    kept = tuple(v for k, v in out.items() if k not in [*ignore, "loss"])  # what Trainer.prediction_step keeps
    assert len(kept) == 1 and set(kept[0]) == set(model.config.task_names)
    assert MultiTaskModel.accepts_loss_kwargs is False


def test_encoder_freezing():
    model = build()
    model.set_encoder_frozen(True)
    model.train()
    assert model.encoder_frozen and not model.encoder.training and model.heads.training
    assert not any(p.requires_grad for p in model.encoder.parameters())
    out = model(**batch(), **labels())
    out.loss.backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.heads["emotion"].output.weight.grad is not None
    model.set_encoder_frozen(False)
    assert not model.encoder_frozen and model.encoder.training
    assert all(p.requires_grad for p in model.encoder.parameters())
    model(**batch(), **labels()).loss.backward()
    assert next(model.get_encoder_layers()[0].parameters()).grad is not None


def _tiny_mpnet_and_xlmr():
    from transformers import MPNetConfig, XLMRobertaConfig

    return {"mpnet": MPNetConfig(**TINY, max_position_embeddings=130),
            "xlm-roberta": XLMRobertaConfig(**TINY, max_position_embeddings=130, pad_token_id=1)}


def test_encoder_embeddings_and_layers_for_every_backbone():
    configs = {kind: tiny_backbone_config(kind) for kind in ("bert", "distilbert", "roberta")}
    configs.update(_tiny_mpnet_and_xlmr())
    for kind, encoder_config in configs.items():
        model = MultiTaskModel(MultiTaskConfig(encoder_config=encoder_config, tasks=TASKS[:1]))
        layers = model.get_encoder_layers()
        assert isinstance(layers, nn.ModuleList) and len(layers) == 2, kind
        embeddings = model.get_encoder_embeddings()
        assert any(p is model.encoder.get_input_embeddings().weight for p in embeddings.parameters()), kind
        assert model(**batch()).logits["emotion"].shape == (4, 3), kind
    model.encoder = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"encoder layers: cannot find it in encoder Sequential.*tried attributes"):
        model.get_encoder_layers()


def test_from_backbone_loads_packaged_minilm(minilm_path, tokenizer):
    from transformers import AutoModel

    torch.manual_seed(0)
    model = MultiTaskModel.from_backbone(minilm_path, TASKS, pooling="mean", head_hidden_dims=[32],
                                         attn_implementation="eager")
    reference = AutoModel.from_pretrained(minilm_path)
    for name, value in model.encoder.state_dict().items():
        assert torch.equal(value, reference.state_dict()[name]), name
    assert model.encoder.config._attn_implementation == "eager"
    assert model.config.encoder_config is model.encoder.config
    fresh = torch.cat([head.output.weight.flatten() for head in model.heads.values()])
    assert 0.017 < fresh.std().item() < 0.023  # the heads are new, drawn with initializer_range 0.02
    assert model.config.encoder_config.hidden_size == 384 and len(model.get_encoder_layers()) == 6
    assert model.config.encoder_name_or_path == minilm_path
    encoded = tokenizer(["I love this", "so angry right now!"], padding=True, return_tensors="pt")
    out = model(**encoded, labels_emotion=torch.tensor([1, 0]))
    assert out.logits["tags"].shape == (2, 4) and torch.isfinite(out.loss)


LOADER = textwrap.dedent("""
    import importlib.util, json, sys
    import torch
    from transformers import AutoModel
    assert importlib.util.find_spec("modeling") is None, "the repository must not be importable here"
    folder, inputs_path = sys.argv[1], sys.argv[2]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    inputs = torch.load(inputs_path)
    with torch.no_grad():
        out = model(**inputs)
    torch.save({k: v for k, v in out.logits.items()}, inputs_path + ".out")
    print(json.dumps({"module": type(model).__module__, "class": type(model).__name__}))
""")


def test_save_and_load_in_a_fresh_process_without_the_repo(tmp_path):
    model = build("distilbert", pooling="attention", loss_weighting="uncertainty", head_residual=True,
                  tasks=[*TASKS[:3], {**TASKS[3], "loss": "gaussian_nll", "output_range": [1, 5]}],
                  thresholds={"tags": {"a": 0.3}}, temperatures={"emotion": 1.2}).eval()
    with torch.no_grad():
        model.uncertainty.log_variances.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    folder = tmp_path / "saved"
    model.save_pretrained(folder)
    saved = json.loads((folder / "config.json").read_text())
    assert saved["auto_map"] == {"AutoConfig": "configuration_multitask.MultiTaskConfig",
                                 "AutoModel": "modeling_multitask.MultiTaskModel"}
    code_files = ("modeling_multitask.py", "configuration_multitask.py", "pooling.py", "losses.py")
    for name in ("model.safetensors", *code_files):
        assert (folder / name).is_file(), name
    inputs = batch()
    torch.save(inputs, tmp_path / "inputs.pt")
    with torch.no_grad():
        expected = model(**inputs).logits
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_MODULES_CACHE=str(tmp_path / "hf_modules"), HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", LOADER, str(folder), str(tmp_path / "inputs.pt")], cwd=workdir,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["class"] == "MultiTaskModel" and info["module"].startswith("transformers_modules.")
    loaded = torch.load(tmp_path / "inputs.pt.out")
    assert loaded.keys() == expected.keys()
    for name in expected:
        assert torch.equal(loaded[name], expected[name]), name


def test_in_process_auto_model_round_trip(tmp_path):
    from transformers import AutoConfig, AutoModel

    model = build("roberta", loss_weighting="uncertainty").eval()
    model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), MultiTaskConfig)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, MultiTaskModel)
    for name, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name]), name
    with torch.no_grad():
        assert torch.equal(model(**batch()).logits["emotion"], loaded(**batch()).logits["emotion"])


def test_from_pretrained_checks_a_local_folder_first(tmp_path):
    from modeling.serving import SavedModelError

    build().save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00")
    with pytest.raises(SavedModelError, match="model.safetensors' is corrupt or truncated"):
        MultiTaskModel.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(SavedModelError, match="has no weights file"):
        MultiTaskModel.from_pretrained(tmp_path)
