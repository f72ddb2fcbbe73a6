"""Error types whose messages are shown to the user as one line (no traceback) by the scripts."""

from __future__ import annotations


class InputError(ValueError):
    """A text source or output target that cannot be used."""


class ModelLoadError(ValueError):
    """A model path, Hub id or ONNX file that cannot be served (missing, corrupt, or not one of ours)."""
