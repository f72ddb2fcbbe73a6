"""Describe, derive and check encoders for `compare_backbones.py`: configs, exact parameter counts without weights,
compute per token, and whether weights and a tokenizer are at hand.

A backbone spec is a Hub id, a local model folder, `minilm` (the packaged all-MiniLM-L6-v2), or `SPEC@N`: SPEC cut
to its first N layers (written as a real local model folder when its weights are needed). The configs of the
default backbones ship in `backbones/`, so the quick comparison runs offline; any other id is read from the Hugging
Face cache, or from the Hub when online. Parameters are counted on the meta device: the model is built from its
config with shapes but no memory, so the count is exact, costs no RAM and reads no weights.
"""

from __future__ import annotations

import copy
import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modeling.modeling_multitask import build_encoder, encoder_kwargs
from modeling.serving import (
    TOKENIZER_SETTINGS,
    TOKENIZER_VOCABULARIES,
    WEIGHT_FILES,
    SavedModelError,
    check_tokenizer_files,
    first_line,
    without_environment_keys,
)
from training.arguments import DEFAULT_BACKBONE
from training.recipe import PACKAGED_ALIASES, config_depth, resolve_backbone

CONFIG_DIR = Path(__file__).resolve().parents[1] / "backbones"
DEFAULT_SPECS = (
    "nreimers/MiniLM-L6-H384-uncased",
    "microsoft/MiniLM-L12-H384-uncased",
    "microsoft/xtremedistil-l6-h256-uncased",
    "distilroberta-base",
    "xlm-roberta-base",
    DEFAULT_BACKBONE,
)
HUB_ALIASES = {"FacebookAI/xlm-roberta-base": "xlm-roberta-base",
               "distilbert/distilroberta-base": "distilroberta-base"}
TOKENIZER_FILES = (TOKENIZER_SETTINGS, *TOKENIZER_VOCABULARIES)
DERIVED = re.compile(r"(.+)@(\d+)")
LOCAL, PACKAGED, BUNDLED, HUB = "local folder", "packaged", "bundled config", "Hugging Face cache or Hub"


class BackboneUnavailable(Exception):
    """A backbone that cannot be described or measured here; the message is the reason, on one line."""


@dataclass
class Backbone:
    """A resolved spec: its config, where its weights load from (a folder or Hub id) and, for `SPEC@N`, its base."""

    spec: str
    source: str
    config: Any
    weights_from: str | None = None
    base: Backbone | None = None

    @property
    def layers(self) -> int:
        return encoder_layers(self.config)

    @property
    def label(self) -> str:
        """A short name for tables: the spec, a local folder's name, or BASE@N."""
        if self.base is not None:
            return f"{self.base.label}@{self.layers}"
        return Path(self.spec).name if self.source == LOCAL else self.spec

    @property
    def slug(self) -> str:
        """This backbone's folder name in the output folder (unique for local folders of the same name)."""
        if self.base is not None:
            return f"{self.base.slug}-L{self.layers}"
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", self.label.replace("/", "__")).strip("_.") or "backbone"
        if self.source != LOCAL:
            return name
        return f"{name}-{hashlib.sha1(str(Path(self.spec).resolve()).encode()).hexdigest()[:8]}"


def expand_specs(specs: list[str] | None) -> list[str]:
    """The specs to compare, in order, without repeats; none given (or the word `defaults`) means the defaults."""
    expanded = []
    for spec in specs or ["defaults"]:
        expanded += list(DEFAULT_SPECS) if spec == "defaults" else [spec]
    return list(dict.fromkeys(expanded))


def resolve(spec: str) -> Backbone:
    """A spec -> `Backbone` (its config read, nothing else); `BackboneUnavailable` says why it cannot be had."""
    spec = spec.strip()
    if not spec:
        raise BackboneUnavailable("empty backbone name")
    path = Path(spec).expanduser()
    if path.exists():
        return _local(spec, path, LOCAL)
    derived = DERIVED.fullmatch(spec)
    if derived:
        return derive(spec, resolve(derived.group(1)), int(derived.group(2)))
    if spec in PACKAGED_ALIASES and Path(resolve_backbone(spec)).is_dir():
        return _local(spec, Path(resolve_backbone(spec)), PACKAGED)
    hub_id = DEFAULT_BACKBONE if spec in PACKAGED_ALIASES else spec
    bundled = CONFIG_DIR / (HUB_ALIASES.get(hub_id, hub_id).replace("/", "__") + ".json")
    if bundled.is_file():
        return Backbone(spec, BUNDLED, _read_config(str(bundled)), weights_from=hub_id)
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise BackboneUnavailable(f"{spec}: no such folder, and not a Hub id")
    return Backbone(spec, HUB, _read_config(hub_id, hub=True), weights_from=hub_id)


def _local(spec: str, path: Path, source: str) -> Backbone:
    if not path.is_dir():
        raise BackboneUnavailable(f"{path} is a file, not a model folder")
    if not (path / "config.json").is_file():
        raise BackboneUnavailable(f"{path} is not a model folder (it has no config.json)")
    return Backbone(spec, source, _read_config(str(path)), weights_from=str(path))


def _read_config(name: str, hub: bool = False):
    """`AutoConfig` of a folder, a config file or a Hub id; any failure becomes one `BackboneUnavailable` line."""
    from huggingface_hub import constants
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name)
    except (OSError, ValueError, KeyError, TypeError) as error:
        if hub and constants.HF_HUB_OFFLINE:
            raise BackboneUnavailable(f"no config for {name!r} in the Hugging Face cache, and HF_HUB_OFFLINE is set "
                                      "(not a bundled default: run once online, or give a local folder)") from None
        if hub:
            raise BackboneUnavailable(f"no config for {name!r} on the Hub: {first_line(error)}") from None
        raise BackboneUnavailable(f"config of {name} cannot be read: {first_line(error)}") from None


def derive(spec: str, base: Backbone, layers: int) -> Backbone:
    """`base` cut to its first `layers` encoder layers (config only; `materialise` writes the weights)."""
    depth = base.layers
    if not 1 <= layers <= depth:
        raise BackboneUnavailable(f"{spec}: {base.spec} has {depth} layers, so @N must be between 1 and {depth}")
    config = copy.deepcopy(base.config)
    config.num_hidden_layers = layers  # DistilBERT maps it to n_layers
    return Backbone(spec, f"first {layers} of {depth} layers of {base.label}", config, base=base)


def encoder_layers(config) -> int:
    """Number of transformer layers, from the config alone."""
    depth = config_depth(config)
    if depth is None:
        raise BackboneUnavailable(f"cannot tell how many layers a {config.model_type!r} encoder has")
    return depth


def count_parameters(config) -> dict[str, int]:
    """Exact parameter counts of the encoder as `MultiTaskModel` loads it (no pooler), built on the meta device."""
    import torch

    try:
        with torch.device("meta"):
            model = build_encoder(config)
    except (ValueError, KeyError, TypeError, RuntimeError) as error:
        raise BackboneUnavailable(f"cannot build a {config.model_type!r} encoder from its config: "
                                  f"{first_line(error)}") from None
    return parameter_counts(model)


def parameter_counts(model) -> dict[str, int]:
    """Total, embedding-table and non-embedding parameters of a module (shared tensors counted once)."""
    import torch

    total = sum(p.numel() for p in model.parameters())
    embedding = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    return {"parameters": total, "embedding_parameters": embedding, "non_embedding_parameters": total - embedding}


def flops_per_token(non_embedding: int, layers: int, hidden: int, sequence: int) -> int:
    """Forward FLOPs per token (Kaplan et al. 2020): 2 per non-embedding weight (a multiply and an add) plus the
    attention scores and mixing over `sequence` tokens, 2 * layers * sequence * hidden."""
    return 2 * non_embedding + 2 * layers * sequence * hidden


def _attribute(config, *names: str):
    return next((getattr(config, n) for n in names if isinstance(getattr(config, n, None), int)), None)


def describe(backbone: Backbone, sequence: int) -> dict[str, Any]:
    """One quick-comparison row: sizes from the config, exact parameter counts, compute per token at `sequence`."""
    config = backbone.config
    counts = count_parameters(config)
    hidden, layers = _attribute(config, "hidden_size", "dim", "d_model"), backbone.layers
    return {
        "backbone": backbone.spec, "label": backbone.label, "slug": backbone.slug, "source": backbone.source,
        "model_type": config.model_type, **counts, "hidden_size": hidden, "layers": layers,
        "heads": _attribute(config, "num_attention_heads", "n_heads"),
        "intermediate_size": _attribute(config, "intermediate_size", "hidden_dim", "ffn_dim"),
        "vocab_size": _attribute(config, "vocab_size"), "max_positions": _attribute(config, "max_position_embeddings"),
        "sequence_length": sequence,
        "flops_per_token": flops_per_token(counts["non_embedding_parameters"], layers, hidden or 0, sequence),
    }


def _cached(repo: str, names: tuple[str, ...]) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(repo, name), str) for name in names)


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def weights_location(backbone: Backbone) -> str:
    """Where the weights come from: 'local', 'Hugging Face cache', 'Hub', or for SPEC@N its base's; raises
    `BackboneUnavailable` when they cannot be had here."""
    if backbone.base is not None:
        return f"{weights_location(backbone.base)} (first {backbone.layers} layers)"
    source = backbone.weights_from
    if Path(source).is_dir():
        if not any((Path(source) / name).is_file() for name in WEIGHT_FILES):
            raise BackboneUnavailable(f"no weights in {source} (expected one of {list(WEIGHT_FILES)})")
        return "local"
    if _cached(source, WEIGHT_FILES):
        return "Hugging Face cache"
    if _offline():
        raise BackboneUnavailable("weights are not in the Hugging Face cache and HF_HUB_OFFLINE is set (download "
                                  "them once online, or give a local folder)")
    return "Hub"


def tokenizer_location(backbone: Backbone) -> str:
    """Where the tokenizer comes from (SPEC@N: its base's); raises `BackboneUnavailable` when there is none."""
    if backbone.base is not None:
        return tokenizer_location(backbone.base)
    source = backbone.weights_from
    if Path(source).is_dir():
        try:
            check_tokenizer_files(Path(source))
        except SavedModelError:
            raise BackboneUnavailable(f"no tokenizer in {source} (tokenizer_config.json and a vocabulary file such as "
                                      "tokenizer.json or vocab.txt)") from None
        return "local"
    if _cached(source, TOKENIZER_FILES):
        return "Hugging Face cache"
    if _offline():
        raise BackboneUnavailable("tokenizer is not in the Hugging Face cache and HF_HUB_OFFLINE is set")
    return "Hub"


def tokenizer_source(backbone: Backbone) -> str:
    """The folder or Hub id whose tokenizer this backbone uses."""
    return tokenizer_source(backbone.base) if backbone.base is not None else backbone.weights_from


def materialise(backbone: Backbone, folder: Path) -> str:
    """A folder or Hub id with the backbone's weights and tokenizer: its own, or for SPEC@N the base's first N layers
    and its tokenizer, written to `folder` once (through a staging folder, so an interrupted write is redone)."""
    if backbone.base is None:
        return backbone.weights_from
    if (folder / "config.json").is_file():
        return str(folder)
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    source = materialise(backbone.base, folder.with_name(f"{folder.name}-base"))
    kwargs = encoder_kwargs(backbone.config)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the dropped layers' weights would be listed as unexpected
    try:
        model, info = AutoModel.from_pretrained(source, num_hidden_layers=backbone.layers, output_loading_info=True,
                                                **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    if info.get("missing_keys"):
        raise BackboneUnavailable(f"{backbone.spec}: {len(info['missing_keys'])} weights missing in {source}")
    staging = folder.with_name(f"{folder.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    without_environment_keys(AutoTokenizer.from_pretrained(source)).save_pretrained(staging)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return str(folder)


def quick_row(spec: str, sequence: int) -> dict[str, Any]:
    """The quick comparison of one spec: its description and where weights and tokenizer would come from, or the
    reason it cannot be described."""
    try:
        backbone = resolve(spec)
        row = describe(backbone, sequence)
    except BackboneUnavailable as error:
        return {"backbone": spec, "label": spec, "status": f"unavailable: {error}"}
    for key, locate in (("weights", weights_location), ("tokenizer", tokenizer_location)):
        try:
            row[key] = locate(backbone)
        except BackboneUnavailable as error:
            row[key] = f"none: {error}"
    return {**row, "status": "ok"}


def compare_quick(specs: list[str], sequence: int) -> list[dict[str, Any]]:
    """Quick-comparison rows of every spec, in order; one that cannot be described is a row with the reason."""
    return [quick_row(spec, sequence) for spec in specs]
