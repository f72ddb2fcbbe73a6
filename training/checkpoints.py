"""Resuming safely: find the last checkpoint that was written completely, and tell whether training had finished.

`transformers.trainer_utils.get_last_checkpoint` returns the highest `checkpoint-N` folder whatever it holds, so a
run killed while writing a checkpoint cannot be resumed ("Can't find a valid checkpoint"), or worse, resumes with a
fresh optimizer when `scheduler.pt` is missing. The Trainer writes, in order: config and weights (the weights
atomically), tokenizer, `training_args.bin`, `optimizer.pt`, `scheduler.pt`, `rng_state*.pth`, and
`trainer_state.json` last; a checkpoint is complete when all of them are there, non-empty, and the state names the
step of its folder.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

from modeling.serving import SavedModelError, check_safetensors

logger = logging.getLogger(__name__)
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "trainer_state.json"
TRAINING_FILES = ("optimizer.pt", "scheduler.pt")


def checkpoint_step(folder: Path) -> int | None:
    match = CHECKPOINT_PATTERN.match(folder.name)
    return int(match.group(1)) if match else None


def read_state(folder: Path) -> dict | None:
    """`trainer_state.json` of a checkpoint, or None when it is missing or cut short."""
    try:
        return json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def incomplete_reason(folder: Path, weights_only: bool = False) -> str | None:
    """Why `folder` cannot be resumed from (None when it is complete)."""
    state = read_state(folder)
    if state is None:
        return f"no readable {STATE_FILE} (the checkpoint was being written)"
    if state.get("global_step") != checkpoint_step(folder):
        return f"{STATE_FILE} names step {state.get('global_step')}, not {checkpoint_step(folder)}"
    weights = folder / "model.safetensors"
    if not weights.is_file():
        return "no model.safetensors"
    try:
        check_safetensors(weights)
    except SavedModelError as err:
        return str(err)
    required = ["training_args.bin"] if weights_only else ["training_args.bin", *TRAINING_FILES]
    if not weights_only and not list(folder.glob("rng_state*.pth")):
        return "no rng_state*.pth"
    for name in [*required, *(p.name for p in folder.glob("rng_state*.pth"))]:
        path = folder / name
        if not path.is_file() or path.stat().st_size == 0:
            return f"{name} is missing or empty"
    return None


def last_complete_checkpoint(output_dir: str | Path, weights_only: bool = False) -> Path | None:
    """The newest complete `checkpoint-N` in `output_dir`; each newer, incomplete one is skipped with a warning."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    candidates = sorted((p for p in folder.iterdir() if p.is_dir() and checkpoint_step(p) is not None),
                        key=checkpoint_step, reverse=True)
    for candidate in candidates:
        reason = incomplete_reason(candidate, weights_only)
        if reason is None:
            return candidate
        logger.warning("--resume: skipping %s: %s", candidate, reason)
    return None


def planned_steps(max_steps: int, num_train_epochs: float, steps_per_epoch: int) -> int:
    """Optimizer steps the run is configured for (`max_steps` wins when > 0, as in the Trainer)."""
    return max_steps if max_steps > 0 else math.ceil(num_train_epochs * steps_per_epoch)


def finished_training(checkpoint: Path, planned: int) -> bool:
    """True when the checkpoint's run had already done every planned step, or early stopping had ended it (its
    patience counter had reached the patience)."""
    state = read_state(checkpoint) or {}
    if state.get("global_step", 0) >= planned:
        return True
    stopper = (state.get("stateful_callbacks") or {}).get("EarlyStoppingCallback") or {}
    patience = (stopper.get("args") or {}).get("early_stopping_patience")
    counter = (stopper.get("attributes") or {}).get("early_stopping_patience_counter", 0)
    return patience is not None and counter >= patience
