"""Batched tokenization without padding, truncation, and the content-keyed cache."""

from __future__ import annotations

from data.tokenization import tokenize_texts, tokenizer_fingerprint


def test_tokenize_truncates_without_padding_and_caches(tmp_path, tokenizer):
    texts = ["hello world", "word " * 50]
    first = tokenize_texts(texts, tokenizer, max_length=16, cache_dir=tmp_path)
    assert first.column_names == ["input_ids", "token_type_ids", "attention_mask"]
    assert [len(x) for x in first["input_ids"]] == [4, 16]
    assert first["input_ids"][0] == tokenizer("hello world")["input_ids"]
    entries = list(tmp_path.iterdir())
    assert len(entries) == 1
    again = tokenize_texts(texts, tokenizer, max_length=16, cache_dir=tmp_path)
    assert again.cache_files and again.cache_files[0]["filename"].startswith(str(entries[0]))
    assert again["input_ids"][:] == first["input_ids"][:]
    tokenize_texts(texts, tokenizer, max_length=8, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2  # max_length is part of the key
    assert tokenizer_fingerprint(tokenizer) == tokenizer_fingerprint(tokenizer)


def test_no_cache_dir_keeps_it_in_memory(tokenizer):
    out = tokenize_texts(["a b c"], tokenizer, max_length=8, cache_dir=None)
    assert out["input_ids"][0] == tokenizer("a b c")["input_ids"] and not out.cache_files
