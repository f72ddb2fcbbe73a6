"""train_ensemble.py's steps: members (trained, reused or given), held-out predictions, weights, one saved model.

How the splits are used, so that no number is fitted on the data it is reported on:
- members train on the training split (with `--cv-folds K`, member k on every fold but k, for a fixed budget) and
  pick their best checkpoint on the validation split's `select` half (the half train_enhanced.py uses for that);
- the validation split's other half is cut in two: the ensemble weights are fitted on one part, the ensemble's
  temperatures and thresholds on the other (on the ensemble's own outputs);
- the test split fits nothing; members, the plain average and the ensemble are compared on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from data.tokenization import tokenizer_fingerprint
from training.arguments import ArgumentError, read_flag_file
from training.evaluation import collect_predictions, fit_calibration, select_and_calibrate, split_for_calibration

logger = logging.getLogger(__name__)
SELECTIONS = ("greedy", "average")


@dataclass
class EnsembleArguments:
    """Where the members come from and how their weights are fitted; every other flag is train_enhanced.py's."""

    members_file: str | None = field(default=None, metadata={
        "help": "YAML list of members, each a mapping of train_enhanced.py flags (e.g. {seed: 1, pooling: cls})."})
    member: list[str] | None = field(default=None, metadata={
        "help": "A member as NAME=VALUE flag settings, e.g. 'seed=2 pooling=cls' (repeatable).",
        "action": "extend"})
    from_models: list[str] | None = field(default=None, metadata={
        "help": "Ensemble these saved model folders instead of training members.", "nargs": "+"})
    cv_folds: int | None = field(default=None, metadata={
        "help": "K members, member k trained on every fold of the training split but k (fixed budget, no "
                "checkpoint selection); out-of-fold scores are reported, with their mean and spread over folds."})
    selection: str = field(default="greedy", metadata={
        "help": f"Weights: greedy (bagged ensemble selection per task) or average; one of {list(SELECTIONS)}."})
    selection_rounds: int = field(default=25, metadata={"help": "Greedy additions per bag."})
    bagging_rounds: int = field(default=20, metadata={"help": "Bootstrap samples the selection is averaged over."})

    def __post_init__(self):
        if self.selection not in SELECTIONS:
            raise ArgumentError(f"--selection {self.selection!r}: choose one of {list(SELECTIONS)}")
        if self.cv_folds is not None and self.cv_folds < 2:
            raise ArgumentError(f"--cv-folds {self.cv_folds}: cross-validation needs at least 2 folds")
        if self.selection_rounds < 1 or self.bagging_rounds < 0:
            raise ArgumentError("--selection-rounds must be >= 1 and --bagging-rounds >= 0")
        sources = [bool(self.members_file or self.member), bool(self.from_models), self.cv_folds is not None]
        if sum(sources) != 1:
            raise ArgumentError("give the members one way: --members-file / --member, --from-models, or --cv-folds")


def member_specs(args: EnsembleArguments) -> list[dict[str, Any]]:
    """Each member's flag settings, from the YAML file and `--member` strings; fewer than two is an error."""
    specs: list[dict[str, Any]] = []
    if args.members_file:
        content = read_flag_file(args.members_file, "--members-file")
        content = content.get("members") if isinstance(content, dict) else content
        if not isinstance(content, list) or not all(isinstance(m, dict) for m in content):
            raise ArgumentError(f"--members-file {args.members_file}: expected a list of flag mappings")
        specs += content
    for text in args.member or []:
        pairs = [item.partition("=") for item in shlex.split(text)]
        if not pairs or any(not sep or not key for key, sep, _ in pairs):
            raise ArgumentError(f"--member {text!r}: expected NAME=VALUE settings, e.g. 'seed=2 pooling=cls'")
        specs.append({key: value for key, _, value in pairs})
    if len(specs) < 2:
        raise ArgumentError(f"an ensemble needs at least 2 members, got {len(specs)}")
    return specs


def flags_to_argv(settings: dict[str, Any]) -> list[str]:
    """`{pooling: cls, head_hidden_dims: [64, 32], head_residual: true}` as command-line flags."""
    argv = []
    for key, value in settings.items():
        if value is None:
            continue
        argv.append(f"--{str(key).replace('_', '-')}")
        values = value if isinstance(value, (list, tuple)) else str(value).split()
        argv += [str(v).lower() if isinstance(v, bool) else str(v) for v in values]
    return argv


@dataclass
class HeldOut:
    """The rows the ensemble is fitted and judged on (token ids and labels), in the members' order."""

    weights: Any
    calibrate: Any
    test: Any


def held_out_parts(tokenized, split_seed: int, cross_validation: bool) -> HeldOut:
    """Weights and calibration rows: halves of the validation rows no member selected a checkpoint on."""
    if "validation" not in tokenized or "test" not in tokenized:
        raise ArgumentError("an ensemble needs validation and test data (--validation-split / --test-split > 0, "
                            "or files)")
    rest = tokenized["validation"] if cross_validation else select_and_calibrate(tokenized, split_seed)[1]
    weights, calibrate = split_for_calibration(rest, split_seed)
    return HeldOut(weights, calibrate, tokenized["test"])


def rows_hash(dataset) -> str:
    """Identity of a set of rows (their token ids), to keep cached predictions honest."""
    digest = hashlib.sha256()
    for ids in dataset["input_ids"]:
        digest.update(np.asarray(ids, dtype=np.int64).tobytes() + b"|")
    return digest.hexdigest()[:16]


def cached_predictions(folder: Path, model, parts: HeldOut, collator, batch_size: int = 64) -> dict:
    """{part: ({task: logits}, {task: labels})} of one member, read from its folder when the rows are the same."""
    cache, index = folder / "heldout.npz", folder / "heldout.json"
    key = {name: rows_hash(getattr(parts, name)) for name in ("weights", "calibrate", "test")}
    if cache.is_file() and index.is_file() and json.loads(index.read_text()) == key:
        stored = np.load(cache)
        return {part: tuple({k.split("/")[2]: stored[k] for k in stored.files if k.startswith(f"{part}/{kind}/")}
                            for kind in ("logits", "labels")) for part in key}
    out = {part: collect_predictions(model, getattr(parts, part), collator, batch_size) for part in key}
    arrays = {f"{part}/{kind}/{task}": value for part, pair in out.items()
              for kind, values in zip(("logits", "labels"), pair) for task, value in values.items()}
    np.savez(cache, **arrays)
    index.write_text(json.dumps(key))
    return out


def check_members(folders: list[Path]) -> None:
    """Members must share tasks, tokenizer and max_length; anything else is one line naming the folders."""
    from modeling.serving import SavedModelError, check_saved_folder

    configs = []
    for folder in folders:
        try:
            configs.append(check_saved_folder(folder))
        except SavedModelError as error:
            raise ArgumentError(f"--from-models: {error}") from None
    signature = [[(t["name"], t["type"], t["labels"]) for t in c["tasks"]] for c in configs]
    other = next((i for i, s in enumerate(signature) if s != signature[0]), None)
    if other is not None:
        raise ArgumentError(f"members predict different tasks: {folders[0]} has {[s[:2] for s in signature[0]]}, "
                            f"{folders[other]} has {[s[:2] for s in signature[other]]}; every member needs the same "
                            "tasks and labels")
    lengths = {c.get("max_length") for c in configs}
    if len(lengths) > 1:
        raise ArgumentError(f"members were trained with different max_length {sorted(lengths, key=str)}; train them "
                            "with the same --max-length")


def check_tokenizers(tokenizers: list, names: list[str]) -> None:
    prints = [tokenizer_fingerprint(t) for t in tokenizers]
    if len(set(prints)) > 1:
        other = names[next(i for i, p in enumerate(prints) if p != prints[0])]
        raise ArgumentError(f"members use different tokenizers ({names[0]} and {other}); an ensemble runs all "
                            "members on one tokenization, so their encoders must share a vocabulary")


def fold_assignment(labels: np.ndarray | None, rows: int, folds: int, seed: int) -> np.ndarray:
    """Fold of every training row, stratified on the first classification task where every class has `folds`
    rows (scikit-learn's StratifiedKFold), plain KFold otherwise."""
    from sklearn.model_selection import KFold, StratifiedKFold

    fold = np.empty(rows, dtype=np.int64)
    usable = labels is not None and (labels >= 0).all() and np.bincount(labels).min() >= folds
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed) if usable else KFold(
        folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(np.zeros(rows), labels if usable else None)):
        fold[test] = k
    return fold


def without_fold(data, fold: np.ndarray, k: int):
    """PreparedData whose training split leaves out fold `k` (labels, lengths and texts with it)."""
    keep = np.flatnonzero(fold != k)
    tokenized, raw = data.tokenized.copy(), data.raw.copy()
    tokenized["train"], raw["train"] = tokenized["train"].select(keep), raw["train"].select(keep)
    lengths = None if data.train_lengths is None else data.train_lengths[keep]
    return replace(data, tokenized=tokenized, raw=raw, train_lengths=lengths,
                   train_labels={name: values[keep] for name, values in data.train_labels.items()})


def fit_ensemble_calibration(tasks: list[dict], logits: dict, labels: dict) -> dict:
    """Temperatures and thresholds of the ensemble's own outputs on the calibration rows."""
    return fit_calibration(tasks, logits, labels, split="ensemble calibration")
