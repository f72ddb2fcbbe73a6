"""Access to `modeling/postprocessing.py` that does not import the `modeling` package.

`import modeling.postprocessing` runs `modeling/__init__.py`, which imports the PyTorch model code. An ONNX-only
deployment must not pay for (or depend on) that, so when `modeling` is not imported yet the numpy-only module is
loaded from its file under a private name. Both routes give the same functions.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_PRIVATE_NAME = "_multitask_postprocessing"
_SOURCE = Path(__file__).resolve().parents[1] / "modeling" / "postprocessing.py"


def _load() -> ModuleType:
    if "modeling" in sys.modules:
        return importlib.import_module("modeling.postprocessing")
    if _PRIVATE_NAME in sys.modules:
        return sys.modules[_PRIVATE_NAME]
    spec = importlib.util.spec_from_file_location(_PRIVATE_NAME, _SOURCE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_PRIVATE_NAME] = module
    spec.loader.exec_module(module)
    return module


_module = _load()
decode_outputs = _module.decode_outputs
decode_task = _module.decode_task
flatten_result = _module.flatten_result
task_probabilities = _module.task_probabilities
