"""training/backbones.py: configs, exact parameter counts on the meta device, compute estimate, unavailable
backbones with their reason, and SPEC@N variants that are real model folders."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_backbone_config
from transformers import AutoModel, AutoTokenizer

from training.backbones import (
    DEFAULT_SPECS,
    BackboneUnavailable,
    compare_quick,
    count_parameters,
    expand_specs,
    flops_per_token,
    materialise,
    parameter_counts,
    resolve,
    tokenizer_location,
    weights_location,
)


def test_meta_device_count_equals_a_materialised_model(backbone_kind):
    config = tiny_backbone_config(backbone_kind)
    counted = count_parameters(config)
    kwargs = {} if backbone_kind == "distilbert" else {"add_pooling_layer": False}
    model = AutoModel.from_config(config, **kwargs)
    assert counted == parameter_counts(model)
    assert counted["parameters"] == sum(p.numel() for p in model.parameters())
    assert next(model.parameters()).device.type == "cpu"
    assert 0 < counted["non_embedding_parameters"] < counted["parameters"]


def test_bundled_default_configs_give_the_published_sizes_offline():
    rows = {row["backbone"]: row for row in compare_quick(list(DEFAULT_SPECS), 128)}
    assert all(row["status"] == "ok" for row in rows.values()), rows
    expected = {"microsoft/MiniLM-L12-H384-uncased": (33_212_160, 12, 384),
                "microsoft/xtremedistil-l6-h256-uncased": (12_684_288, 6, 256),
                "distilroberta-base": (81_527_808, 6, 768), "xlm-roberta-base": (277_453_056, 12, 768)}
    for spec, (parameters, layers, hidden) in expected.items():
        assert (rows[spec]["parameters"], rows[spec]["layers"], rows[spec]["hidden_size"]) == (parameters, layers,
                                                                                               hidden)
        assert rows[spec]["source"] == "bundled config"
    packaged = rows["sentence-transformers/all-MiniLM-L6-v2"]
    assert packaged["parameters"] == rows["nreimers/MiniLM-L6-H384-uncased"]["parameters"] == 22_565_376
    assert (packaged["weights"], packaged["tokenizer"]) == ("local", "local")
    assert rows["xlm-roberta-base"]["weights"].startswith("none: weights are not in the Hugging Face cache")


def test_flops_estimate_is_positive_and_grows_with_layers_and_sequence():
    base = resolve("minilm")
    counts = [count_parameters(resolve(f"minilm@{n}").config)["non_embedding_parameters"] for n in (2, 4, 6)]
    flops = [flops_per_token(c, n, 384, 128) for c, n in zip(counts, (2, 4, 6))]
    assert 0 < flops[0] < flops[1] < flops[2]
    assert flops_per_token(counts[2], 6, 384, 256) > flops[2]
    assert flops[2] == 2 * count_parameters(base.config)["non_embedding_parameters"] + 2 * 6 * 128 * 384


def test_expand_specs_keeps_order_and_expands_defaults():
    assert expand_specs(None) == list(DEFAULT_SPECS)
    assert expand_specs(["minilm", "defaults", "minilm"]) == ["minilm", *DEFAULT_SPECS]


@pytest.fixture
def no_tokenizer_dir(tmp_path) -> str:
    folder = tmp_path / "no_tokenizer"
    AutoModel.from_config(tiny_backbone_config("bert")).save_pretrained(folder)
    return str(folder)


def test_unavailable_backbones_are_rows_with_the_reason_and_the_others_still_run(tmp_path, no_tokenizer_dir):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    specs = [str(tmp_path / "empty"), str(tmp_path / "file.txt"), "someone/not-bundled-model", "minilm@9",
             "./missing-folder", "minilm", no_tokenizer_dir]
    rows = {row["backbone"]: row for row in compare_quick(specs, 64)}
    assert "no config.json" in rows[str(tmp_path / "empty")]["status"]
    assert "is a file" in rows[str(tmp_path / "file.txt")]["status"]
    assert "HF_HUB_OFFLINE is set" in rows["someone/not-bundled-model"]["status"]
    assert "between 1 and 6" in rows["minilm@9"]["status"]
    assert "no such folder" in rows["./missing-folder"]["status"]
    assert all(rows[s]["status"].startswith("unavailable: ") for s in specs[:5])
    assert rows["minilm"]["status"] == "ok" and rows["minilm"]["layers"] == 6
    # described from its config, but it cannot be trained without a tokenizer
    assert rows[no_tokenizer_dir]["status"] == "ok"
    assert rows[no_tokenizer_dir]["tokenizer"].startswith("none: no tokenizer in")
    with pytest.raises(BackboneUnavailable, match="no tokenizer"):
        tokenizer_location(resolve(no_tokenizer_dir))
    assert weights_location(resolve(no_tokenizer_dir)) == "local"


def test_a_folder_without_weights_cannot_be_measured(tmp_path):
    tiny_backbone_config("bert").save_pretrained(tmp_path)
    with pytest.raises(BackboneUnavailable, match="no weights"):
        weights_location(resolve(str(tmp_path)))


def test_derived_variant_has_n_layers_loads_and_keeps_the_first_layers(tiny_backbone_dir, tmp_path):
    derived = resolve(f"{tiny_backbone_dir}@1")
    assert derived.layers == 1 and derived.base.layers == 2
    assert derived.label.endswith("@1") and derived.slug.endswith("-L1")
    folder = materialise(derived, tmp_path / "encoder")
    model = AutoModel.from_pretrained(folder, add_pooling_layer=False)
    base = AutoModel.from_pretrained(tiny_backbone_dir, add_pooling_layer=False)
    assert len(model.encoder.layer) == 1 and model.config.num_hidden_layers == 1
    assert torch.equal(model.encoder.layer[0].output.dense.weight, base.encoder.layer[0].output.dense.weight)
    assert count_parameters(derived.config)["parameters"] == sum(p.numel() for p in model.parameters())
    assert len(AutoTokenizer.from_pretrained(folder)) == len(AutoTokenizer.from_pretrained(tiny_backbone_dir))
    assert materialise(derived, tmp_path / "encoder") == folder  # written once


def test_distilbert_variant_maps_the_layer_count(tmp_path, tokenizer):
    from transformers import DistilBertModel

    DistilBertModel(tiny_backbone_config("distilbert", vocab_size=len(tokenizer))).save_pretrained(tmp_path / "d")
    tokenizer.save_pretrained(tmp_path / "d")
    folder = materialise(resolve(f"{tmp_path / 'd'}@1"), tmp_path / "d1")
    assert len(AutoModel.from_pretrained(folder).transformer.layer) == 1


def test_slugs_of_local_folders_with_the_same_name_differ(tmp_path, tiny_backbone_dir):
    import shutil

    for name in ("a", "b"):
        shutil.copytree(tiny_backbone_dir, tmp_path / name / "model")
    first, second = resolve(str(tmp_path / "a" / "model")), resolve(str(tmp_path / "b" / "model"))
    assert first.label == second.label == "model"
    assert first.slug != second.slug
    assert resolve("xlm-roberta-base").slug == "xlm-roberta-base"
