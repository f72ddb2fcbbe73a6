"""Atomic publishing of a run's output folder: it holds either the previous complete model or the new one.

Everything the final save writes (weights, config, code, tokenizer, tasks, arguments, reports, plots, card) goes
into a staging folder beside the output folder; what else the output folder holds (checkpoints, logs) is moved
into the staging folder; then the two are exchanged in one `renameat2(RENAME_EXCHANGE)` call (Linux), or with two
renames where that call is missing. A kill at any point leaves the output folder complete (old or new) and the
staging folder as a hidden sibling, which `recover_interrupted` folds back at the next start.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)
STAGING_MARK = ".saving-"
RETIRED_MARK = ".retired-"
READY = ".publish-ready"  # written into a staging folder once everything is in it
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def staging_folder(target: str | Path) -> Path:
    """A new, empty hidden folder beside `target` (same file system, so the final rename is atomic)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}{STAGING_MARK}{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()  # mode from the umask, like any folder the user makes
    return staging


def give_plain_modes(folder: Path) -> None:
    """Files under `folder` get the mode a plain `open` gives under the umask; writers that go through a temporary
    file (safetensors, our JSON writers) otherwise leave them readable by their owner only (0600)."""
    mode = 0o666 & ~current_umask()
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, mode)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.ENOTSUP):
        return False
    raise OSError(code, f"cannot exchange {first} and {second}: {os.strerror(code)}")


def publish(staging: Path, target: str | Path) -> Path:
    """Make `staging` the output folder `target`, keeping what `target` held beside the model (checkpoints)."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"--output-dir {target} is a file")
    give_plain_modes(staging)
    (staging / READY).touch()
    if target.is_dir():
        for entry in target.iterdir():
            if not (staging / entry.name).exists():
                os.replace(entry, staging / entry.name)  # checkpoints, logs: same file system, a rename each
        if not exchange(staging, target):
            retired = target.parent / f".{target.name}{RETIRED_MARK}{os.getpid()}"
            os.replace(target, retired)
            os.replace(staging, target)
            staging = retired
        shutil.rmtree(staging, ignore_errors=True)  # now the previous model's files
    else:
        os.replace(staging, target)
    (target / READY).unlink()
    return target


def recover_interrupted(target: str | Path) -> None:
    """Clean up after a save that was killed: a staging folder that was complete but not yet in place takes the
    output folder's place; otherwise its checkpoints move back into the output folder and the rest is dropped."""
    target = Path(target)
    for staging in sorted(target.parent.glob(f".{target.name}{STAGING_MARK}*")):
        if not target.exists() and (staging / READY).exists():  # killed between the fallback's two renames
            os.replace(staging, target)
            (target / READY).unlink()
            continue
        target.mkdir(parents=True, exist_ok=True)
        for entry in staging.glob("checkpoint-*"):
            if not (target / entry.name).exists():
                os.replace(entry, target / entry.name)
        shutil.rmtree(staging, ignore_errors=True)
        logger.warning("cleaned up %s, left by an interrupted save (checkpoints kept)", staging)
    for retired in target.parent.glob(f".{target.name}{RETIRED_MARK}*"):
        shutil.rmtree(retired, ignore_errors=True)
    if target.is_dir():
        (target / READY).unlink(missing_ok=True)
