"""Artifacts: the weight files a phase publishes for a later phase, ``voltx think`` and exports.

Every artifact is one safetensors file whose header metadata holds one JSON object under
``"voltx"``::

    {"kind": "lang_encoder", "args": {"vocab_size": 300, ...}, "phase": "f1", ...}

``kind`` says what the file is (a loader refuses a file of another kind), ``args`` are the
constructor arguments that rebuild the module at its trained size without a config, and any
other field is the kind's own (a codebook's ``k``, a calibrator's ``version``, the phase
that wrote it). :func:`save` writes that format atomically; :func:`read` reads it back with
one set of errors; :func:`load_into` is the one shape check.

Files written before this module still load:

* F1-F3 artifacts (``foundation.save_module``) and the engine's codebook, calibrator and
  safety-axiom files already had this shape (F3 kept its RAR settings as a JSON string);
* translator artifacts and ``--output`` files had ``{"vocab_size", "config"}`` and no kind,
  its per-epoch files no metadata at all: :func:`read` accepts such an *untagged* file where
  the caller says ``untagged=True``, and the caller derives the constructor arguments.

:func:`write_atomic` is the one atomic write (temp file, fsync, rename, fsync the directory,
exit 73 on a full disk): artifacts, tokenizer JSON, the VXCB export, frame files and the
copies a finished run publishes all go through it; checkpoints, which commit a whole
directory, share its tensor writer and fsync.

This module lives at the top of the package, beside ``errors.py``, because three layers use
it and it must not drag one into another: the engine (``voltx think`` loads a translator,
a VFN, a calibrator), the training phases (which write artifacts and load earlier phases')
and the run store's checkpoints.
Under ``voltx/engine`` the run store would import the model package; under ``voltx/train``
or ``voltx/runs`` the engine would import the training loop or the run store. It imports
neither torch nor safetensors at module top, so ``voltx --help`` stays light.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from voltx.errors import CantCreateError, DataError, MissingInputError

if TYPE_CHECKING:
    from torch import Tensor, nn

META_KEY = "voltx"


# --- writing --------------------------------------------------------------------------------------


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a rename is durable only once its directory is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def free_space(directory: Path) -> str:
    """`` (N MiB free on that filesystem)`` for an error message, or "" when unknown."""
    for candidate in (directory, *directory.parents):
        try:
            return f" ({shutil.disk_usage(candidate).free / 2**20:.1f} MiB free on that filesystem)"
        except OSError:
            continue
    return ""


def _clean_copies(tensors: dict) -> dict:
    """CPU, contiguous tensors with storage of their own (safetensors refuses shared storage:
    tied weights, views); a tensor is only copied when it needs to be."""
    out, seen = {}, set()
    for k, v in tensors.items():
        t = v.detach().contiguous().cpu()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel():
            t = t.clone()
        seen.add(ptr)
        out[k] = t
    return out


def save_tensors(tensors: dict, file: Path, metadata: dict[str, str] | None) -> None:
    """safetensors' save_file (not atomic: the caller renames), with its I/O errors as OSError
    (it raises SafetensorError "... No space left on device (os error 28)", which says
    nothing to ``except OSError``)."""
    from safetensors.torch import save_file

    try:
        save_file(_clean_copies(tensors), str(file), metadata=metadata)
    except OSError:
        raise
    except Exception as exc:
        found = re.search(r"os error (\d+)", str(exc))
        if found is None:
            raise
        code = int(found.group(1))
        raise OSError(code, os.strerror(code), str(file)) from exc


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Write a file atomically: ``write(temp path)``, fsync, rename onto ``path``, fsync the
    directory; a crash never leaves half a file at ``path``. A failed write (disk full)
    removes its temp file and is a CantCreateError (exit 73)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CantCreateError(f"cannot write {path}: {exc.strerror or exc}{free_space(path.parent)}. "
                              "Free space or fix the permissions, then run again.") from None
    return path


def write_safetensors(tensors: dict, path: str | os.PathLike[str], metadata: dict[str, str] | None = None) -> Path:
    """One safetensors file, atomically (:func:`write_atomic`)."""
    return write_atomic(path, lambda tmp: save_tensors(tensors, tmp, metadata))


def save(path: str | os.PathLike[str], tensors: dict, kind: str, args: dict | None = None, **fields: Any) -> Path:
    """Write an artifact: ``tensors`` (a state dict) with ``kind``, constructor ``args`` (for a
    module) and the kind's own JSON-able ``fields`` in the metadata."""
    meta = {"kind": kind, **({"args": args} if args is not None else {}), **fields}
    return write_safetensors(tensors, path, {META_KEY: json.dumps(meta)})


# --- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    """One artifact file as read: its metadata object (empty for an untagged file) and tensors."""

    path: Path
    meta: dict[str, Any]
    tensors: dict[str, Tensor] = field(repr=False)

    @property
    def kind(self) -> str | None:
        return self.meta.get("kind")

    @property
    def args(self) -> dict[str, Any]:
        """The constructor arguments the file was saved with ({} when it has none)."""
        return dict(self.meta.get("args") or {})


def _label(kind: str | tuple[str, ...]) -> str:
    return " or ".join(kind) if isinstance(kind, tuple) else kind


def read(path: str | os.PathLike[str], kind: str | tuple[str, ...], how: str = "", *, untagged: bool = False,
         what: str | None = None) -> Artifact:
    """Read an artifact of ``kind`` (or one of several kinds that share an architecture).

    ``how`` (what the user should do: which phase or command makes the file) ends every
    message; ``what`` names the file in them (default: the kind). ``untagged=True`` accepts a
    file without a kind in its metadata (written before kinds were recorded). A missing file
    is a MissingInputError (exit 66); a directory, a foreign or damaged file, or a file of
    another kind is a DataError (exit 65).
    """
    from safetensors import safe_open

    path, what = Path(path), what or _label(kind)
    tail = f" {how}" if how else ""
    if not path.exists():
        raise MissingInputError(f"{path}: {what} file not found.{tail}")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a {what} file.{tail}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}
    except Exception as exc:  # safetensors raises SafetensorError / OSError variants for foreign files
        raise DataError(f"{path} is not a safetensors {what} file ({exc}).{tail}") from None
    try:
        meta = json.loads(header[META_KEY]) if META_KEY in header else {}
    except json.JSONDecodeError:
        raise DataError(f"{path}: its '{META_KEY}' metadata is not JSON; the file is damaged.{tail}") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: its '{META_KEY}' metadata is {type(meta).__name__}, not an object; the file is damaged.{tail}")
    found, wanted = meta.get("kind"), kind if isinstance(kind, tuple) else (kind,)
    if found is None and not untagged:
        raise DataError(f"{path}: expected a {_label(kind)} file, but its metadata records no kind "
                        f"(not an artifact voltx wrote).{tail}")
    if found is not None and found not in wanted:
        raise DataError(f"{path}: expected a {_label(kind)} file, but its metadata says {found!r}.{tail}")
    return Artifact(path, meta, tensors)


def load_into(module: nn.Module, artifact: Artifact, how: str = "") -> nn.Module:
    """Copy the artifact's tensors into ``module``: the one shape check.

    Every tensor of the module's state dict must be in the file with the same shape; extra
    tensors in the file are ignored (a loader may take one part of a file). A mismatch is a
    DataError naming the file, the tensor, the shape found and the shape expected."""
    tail = f" {how}" if how else ""
    expected = module.state_dict()
    missing = [k for k in expected if k not in artifact.tensors]
    if missing:
        more = f" (and {len(missing) - 4} more)" if len(missing) > 4 else ""
        raise DataError(f"{artifact.path}: tensors {', '.join(missing[:4])}{more} are missing; "
                        f"not the weights of this {type(module).__name__}.{tail}")
    for name, value in expected.items():
        found = artifact.tensors[name]
        if tuple(found.shape) != tuple(value.shape):
            raise DataError(f"{artifact.path}: tensor {name!r} has shape {list(found.shape)}, expected {list(value.shape)} "
                            f"(was it trained with a different tokenizer or size?).{tail}")
    module.load_state_dict({k: artifact.tensors[k] for k in expected})
    return module


def run_artifacts(location: str | os.PathLike[str]) -> Path:
    """A run directory's ``artifacts/``, or the directory itself (a checkpoints dir, a folder of files)."""
    path = Path(location)
    return path / "artifacts" if (path / "run.json").exists() or (path / "artifacts").is_dir() else path
