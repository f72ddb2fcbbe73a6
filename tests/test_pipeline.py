"""`pipeline("multitask-text-classification", model=folder)`: registered on import, same results as predict.py."""

from __future__ import annotations

import numpy as np
import pytest
from inference_support import TASKS, TEXTS, save_tiny_model
from transformers import pipeline

import modeling
from inference.runner import load_backend, predict_texts
from modeling.pipeline_multitask import MultiTaskTextClassificationPipeline


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    return save_tiny_model(tmp_path_factory.mktemp("tiny_model"), tokenizer)


@pytest.fixture(scope="module")
def pipe(model_dir):
    return pipeline(modeling.PIPELINE_TASK, model=str(model_dir))


def assert_close(got: dict, expected: dict, tol: float) -> None:
    assert list(got) == list(expected)
    for task, res in expected.items():
        assert got[task].get("label") == res.get("label") and got[task].get("labels") == res.get("labels")
        for key in ("probabilities", "values"):
            if key in res:
                np.testing.assert_allclose(list(got[task][key].values()), list(res[key].values()), atol=tol)
        if "probability" in res:
            assert got[task]["probability"] == pytest.approx(res["probability"], abs=tol)


def test_pipeline_is_registered_and_built_from_a_folder(pipe):
    assert isinstance(pipe, MultiTaskTextClassificationPipeline)
    assert pipe.model.config.task_names == [t["name"] for t in TASKS]
    assert not pipe.model.training


def test_pipeline_equals_predict(pipe, model_dir):
    expected = predict_texts(load_backend(model_dir), TEXTS, batch_size=1)
    batched = pipe(TEXTS, batch_size=3)
    single = [pipe(text) for text in TEXTS]
    assert isinstance(single[0], dict) and len(batched) == len(TEXTS)
    for got_b, got_s, ref in zip(batched, single, expected):
        assert_close(got_s, ref, 1e-6)
        assert_close(got_b, ref, 1e-5)  # padding inside a batch changes float32 rounding only
    assert all("joy" in row["emotions"]["labels"] for row in batched)


def test_pipeline_task_subset_and_argument_errors(pipe):
    only = pipe("so happy today", tasks=["ei", "vad"])
    assert list(only) == ["ei", "vad"] and set(only["vad"]["values"]) == {"V", "A", "D"}
    with pytest.raises(ValueError, match="unknown task"):
        pipe("x", tasks=["mood"])
    with pytest.raises(ValueError, match="unknown pipeline argument"):
        pipe("x", top_k=3)
    long_text = "word " * 400
    assert pipe(long_text, max_length=16)["sentiment"]["label"] in TASKS[0]["labels"]


def test_pipeline_from_model_object(model_dir, tokenizer):
    model = modeling.MultiTaskModel.from_pretrained(model_dir)
    pipe = pipeline(modeling.PIPELINE_TASK, model=model, tokenizer=tokenizer)
    assert_close(pipe(TEXTS[0]), predict_texts(load_backend(model_dir), TEXTS[:1])[0], 1e-6)
