"""Writing files safely, and reading back the JSON a run wrote.

Every whole-file write goes to a temporary file in the same folder, is flushed to disk and is
renamed over the target (`os.replace`), so a reader, or a process killed mid-write, sees the
old file or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .errors import RnnvanishError


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write(path, write) -> None:
    """Call `write(file)` on a temporary binary file beside `path`, flush it to disk, rename it over `path`."""
    path = Path(path)
    tmp = _temp_path(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def to_json(obj) -> str:
    """Indented JSON; NumPy scalars and arrays become numbers and lists."""
    return json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n"


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, to_json(obj))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def read_json(path) -> dict:
    """A JSON object from `path`; a missing, unreadable or non-object file raises RnnvanishError."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except FileNotFoundError:
        raise RnnvanishError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RnnvanishError(f"cannot read {path}: {err}") from None
    if not isinstance(obj, dict):
        raise RnnvanishError(f"{path} does not hold a JSON object")
    return obj


def load_npz_with_meta(path, kind: str, format_name: str, version: int):
    """(meta, arrays) from an .npz file whose 'meta' entry is a JSON object naming its format.

    `kind` names the file in messages ("checkpoint", "trace file"). A missing, corrupt or
    truncated file, a foreign one and another format version each raise RnnvanishError.
    """
    path = Path(path)
    if not path.is_file():
        raise RnnvanishError(f"{kind} {path} does not exist" if not path.exists() else f"{kind} {path} is not a file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}    # read every member now, inside the try
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as err:
        raise RnnvanishError(f"{kind} {path} is corrupt or truncated ({type(err).__name__}: {err})") from None
    if "meta" not in arrays:
        raise RnnvanishError(f"{path} is not an rnnvanish {kind} (it has no 'meta' entry)")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as err:
        raise RnnvanishError(f"{kind} {path} has unreadable metadata ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != format_name:
        raise RnnvanishError(f"{path} is not an rnnvanish {kind}")
    if meta.get("version") != version:
        raise RnnvanishError(f"{kind} {path} has format version {meta.get('version')}; "
                             f"this rnnvanish reads version {version}")
    return meta, arrays
