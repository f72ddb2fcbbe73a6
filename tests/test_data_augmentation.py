"""Word dropout / swap: keyed on (seed, epoch, row), different per epoch and row, never empty, training only."""

from __future__ import annotations

import pandas as pd
import pytest

from data.arguments import DataArguments
from data.augmentation import WordAugmenter
from data.pipeline import prepare_data

WORDS = "cat sat on mat and dog ran to big red house near old green tree by blue lake with fish".split()
TEXTS = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(8)] + ["single", "two words"]  # 20 one-token words each
ROWS = list(range(len(TEXTS)))


def test_a_variant_depends_on_seed_epoch_and_row_only():
    a, b = WordAugmenter(1.0, 0.1, seed=3), WordAugmenter(1.0, 0.1, seed=3)
    first = a(TEXTS, ROWS)
    assert first == b(TEXTS, ROWS) and a(TEXTS, ROWS) == first  # replaying an epoch (a resumed run) repeats it
    assert WordAugmenter(1.0, 0.1, seed=4)(TEXTS, ROWS) != first
    assert a(TEXTS[:1] * 2, [0, 1])[0] != a(TEXTS[:1] * 2, [0, 1])[1]  # the same text in two rows: two variants


def test_dropout_drops_about_the_rate_and_never_all_words():
    out = WordAugmenter(1.0, 0.1, seed=0)(TEXTS, ROWS)
    for before, after in zip(TEXTS[:8], out[:8]):
        kept = after.split()
        assert len(kept) == 18 and set(kept) < set(before.split())  # 10% of 20 words, order kept
    assert out[8] == "single"
    assert len(out[9].split()) == 1  # two words: one dropped, one kept
    everything = WordAugmenter(1.0, 1.0, seed=0)(TEXTS, ROWS)
    assert all(len(t.split()) == 1 for t in everything)


def test_probability_zero_and_swap():
    assert WordAugmenter(0.0, 0.1, seed=0)(TEXTS, ROWS) == TEXTS
    swapped = WordAugmenter(0.0, 0.1, swap_prob=1.0, seed=0)(TEXTS, ROWS)
    for before, after in zip(TEXTS[:8], swapped[:8]):
        assert after != before and sorted(after.split()) == sorted(before.split())
    assert sum(a != b for a, b in zip(WordAugmenter(0.5, 0.1, seed=1)(TEXTS[:8], ROWS[:8]), TEXTS[:8])) not in (0, 8)


def test_set_epoch_changes_variants_reproducibly():
    a = WordAugmenter(1.0, 0.1, seed=0)
    epoch0 = a(TEXTS, ROWS)
    a.set_epoch(1)
    epoch1 = a(TEXTS, ROWS)
    a.set_epoch(0)
    assert a(TEXTS, ROWS) == epoch0 and epoch1 != epoch0


def test_bad_probability():
    with pytest.raises(ValueError, match="dropout_prob must be in"):
        WordAugmenter(2.0)


def test_pipeline_augments_training_rows_only(tmp_path, tokenizer):
    path = tmp_path / "train.csv"
    pd.DataFrame({"text": TEXTS[:8] * 3, "label": ["a", "b"] * 12}).to_csv(path, index=False)
    args = DataArguments(train_file=[str(path)], task=["label:multiclass"], word_dropout=1.0, validation_split=0.25,
                         test_split=0.25, data_cache_dir="none")
    prepared = prepare_data(args, tokenizer, seed=0)
    train, raw_train = prepared.tokenized["train"], prepared.raw["train"]
    plain = tokenizer(raw_train["text"][:4], truncation=True, max_length=128)["input_ids"]
    first = train[:4]
    assert sorted(first) == ["attention_mask", "input_ids", "labels_label", "token_type_ids"]
    assert all(len(a) == len(p) - 2 for a, p in zip(first["input_ids"], plain))  # 2 of 20 words dropped
    assert first["labels_label"] == raw_train["labels_label"][:4]
    assert train[:4]["input_ids"] == first["input_ids"]  # the same epoch replays the same variants
    prepared.augmenter.set_epoch(1)
    assert train[:4]["input_ids"] != first["input_ids"]  # the next epoch draws new ones
    prepared.augmenter.set_epoch(0)
    again = prepare_data(args, tokenizer, seed=0).tokenized["train"][:4]
    assert again["input_ids"] == first["input_ids"]  # reproducible for the seed
    for split in ("validation", "test"):
        evaluation = prepared.tokenized[split]
        texts = prepared.raw[split]["text"]
        assert evaluation[:]["input_ids"] == tokenizer(texts[:], truncation=True, max_length=128)["input_ids"]
        assert evaluation[:]["input_ids"] == evaluation[:]["input_ids"]
    assert prepared.augmenter is not None
