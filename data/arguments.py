"""Data flags shared by every script (`transformers.HfArgumentParser` makes each field `--field` / `--field-x`)."""

from __future__ import annotations

from dataclasses import dataclass, field


def _help(text: str, **extra) -> dict:
    return {"help": text, **extra}


@dataclass
class DataArguments:
    """Where the rows come from, which tasks to predict, and how rows become model inputs."""

    train_file: list[str] | None = field(default=None, metadata=_help(
        "Training file(s): CSV, TSV, JSON (list of records), JSONL, Parquet or a datasets.save_to_disk folder. "
        "Repeatable; several files are concatenated (a task whose column a file lacks is an error: use a tasks "
        "file with per-source column mappings for partial labels). With no file flag, the embedded demo set.",
        action="extend"))
    validation_file: str | None = field(default=None, metadata=_help(
        "Validation file (model selection). Without it, --validation-split of the training data is held out."))
    test_file: str | None = field(default=None, metadata=_help(
        "Test file (final report). Without it, --test-split of the training data is held out."))
    calibration_file: str | None = field(default=None, metadata=_help(
        "Optional file used only to fit thresholds and temperatures (never for model selection or the report)."))
    dataset_name: str | None = field(default=None, metadata=_help(
        "Hub dataset name or local dataset folder, read with datasets.load_dataset (needs network for the Hub)."))
    dataset_config: str | None = field(default=None, metadata=_help("Configuration name of --dataset-name."))
    tasks_file: str | None = field(default=None, metadata=_help(
        "YAML or JSON tasks file: tasks (type, columns, labels, loss settings) and optional per-split sources "
        "with their own column mappings. Relative paths inside it: next to the tasks file first, then the cwd."))
    task: list[str] | None = field(default=None, metadata=_help(
        "Task as NAME:TYPE[:COLUMN[,COLUMN...]], TYPE in multiclass|multilabel|binary|regression; repeatable. "
        "COLUMN defaults to NAME; several columns make a multilabel 0/1 task or a multi-output regression.",
        action="extend"))
    text_column: str = field(default="text", metadata=_help("Column holding the input text."))
    max_length: int = field(default=128, metadata=_help("Truncate texts to this many tokens (padding is per batch)."))
    max_train_samples: int | None = field(default=None, metadata=_help(
        "Keep only the first N training rows (after splitting; for quick runs)."))
    max_eval_samples: int | None = field(default=None, metadata=_help(
        "Keep only the first N rows of each evaluation split (validation, test, calibration)."))
    word_dropout: float = field(default=0.0, metadata=_help(
        "Probability that a training example is augmented by word dropout (drops about --word-dropout-rate of its "
        "words, never all); 0 disables. Training split only, different every epoch, seeded."))
    word_dropout_rate: float = field(default=0.1, metadata=_help(
        "Fraction of words dropped in an augmented example."))
    word_swap: float = field(default=0.0, metadata=_help(
        "Probability that a training example gets two of its words swapped; 0 disables."))
    weighted_sampling: str | None = field(default=None, metadata=_help(
        "Task whose inverse label frequency weights the training sampler (None: uniform sampling)."))
    weighted_sampling_mode: str = field(default="mean", metadata=_help(
        "How a multilabel row's weight combines its labels' weights.", choices=["mean", "max"]))
    validation_split: float = field(default=0.1, metadata=_help(
        "Fraction of the training data held out as validation when no validation file is given (0: none)."))
    test_split: float = field(default=0.1, metadata=_help(
        "Fraction of the training data held out as test when no test file is given (0: none)."))
    split_seed: int | None = field(default=None, metadata=_help(
        "Seed for splitting and augmentation (default: the training seed)."))
    data_cache_dir: str | None = field(default=None, metadata=_help(
        "Folder for cached tokenized splits (default: <HF datasets cache>/multitask_tokenized; 'none' disables)."))

    def __post_init__(self) -> None:
        for name in ("word_dropout", "word_dropout_rate", "word_swap"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1], got {value}")
        for name in ("validation_split", "test_split"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1), got {value}")
        if self.validation_split + self.test_split >= 1.0:
            raise ValueError("--validation-split + --test-split must leave training rows (sum < 1)")
        if self.max_length < 2:
            raise ValueError(f"--max-length must be >= 2, got {self.max_length}")
        if self.weighted_sampling_mode not in ("mean", "max"):
            raise ValueError(f"--weighted-sampling-mode must be mean or max, got {self.weighted_sampling_mode!r}")

    @property
    def uses_demo(self) -> bool:
        """True when no data source flag was given (the embedded demo set is used)."""
        return not (self.train_file or self.dataset_name or self.tasks_file_has_sources)

    @property
    def may_have_validation(self) -> bool:
        """False only when no validation data can come: no file, no split carved out, no tasks-file or dataset
        source that could hold one."""
        return bool(self.validation_file or self.validation_split > 0 or self.dataset_name or self.tasks_file)

    @property
    def tasks_file_has_sources(self) -> bool:
        if not self.tasks_file:
            return False
        from data.sources import read_tasks_file

        return bool(read_tasks_file(self.tasks_file).sources.get("train"))
