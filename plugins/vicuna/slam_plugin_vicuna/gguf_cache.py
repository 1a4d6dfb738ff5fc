"""A converted GGUF, cached: the de-quantised weights (safetensors), config and tokenizer, built once.

De-quantising a GGUF and converting its tokenizer takes transformers many seconds on every
start; a Hugging Face directory loads in a fraction of that. :func:`converted` builds such a
directory the first time a GGUF file is used and finds it on later starts:

- The cache folder is ``$SLAM_CACHE_DIR``, else ``$XDG_CACHE_HOME/slam``, else ``~/.cache/slam``
  (:func:`cache_root`); entries live in its ``gguf/`` folder, one per GGUF content.
- An entry is named by the sha256 of the GGUF file's content. Hashing runs once per file
  version: the digest is remembered in a stamp keyed by the file's resolved path, size and
  modification time, so a later start reads a few bytes instead of the whole file.
- An entry is built in a temporary folder beside it and moved into place with ``os.replace``
  (atomic: a crash leaves no half entry; of two processes building at once, one entry stays).
- Its manifest records each file's size; an entry whose manifest is missing, whose file is
  missing or of another size (a truncated safetensors), or whose safetensors header does not
  read, is removed and rebuilt.

Nothing here imports torch or transformers: the caller passes the function that converts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

#: Overrides the cache folder (default: ``$XDG_CACHE_HOME/slam`` or ``~/.cache/slam``).
CACHE_ENV = "SLAM_CACHE_DIR"
#: The file in each entry that lists its files and sizes; written last.
MANIFEST = "slam-gguf-cache.json"
#: Bumped when the layout of an entry changes: entries of another format are rebuilt.
FORMAT = 1
_CHUNK = 1 << 22


def cache_root() -> Path:
    """The user cache folder of slam: ``$SLAM_CACHE_DIR``, ``$XDG_CACHE_HOME/slam`` or ``~/.cache/slam``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "slam"


def converted(gguf: Path, convert: Callable[[Path], None], root: Path | None = None) -> Path:
    """The cached conversion of the GGUF file ``gguf``: built by ``convert(folder)`` when missing or corrupt.

    ``convert`` writes the Hugging Face files (config, safetensors weights, tokenizer) into the
    folder it is given. Returns the entry's folder.
    """
    folder = (root or cache_root()) / "gguf"
    folder.mkdir(parents=True, exist_ok=True)
    digest = content_digest(gguf, folder / "stamps")
    entry = folder / digest
    problem = entry_problem(entry, digest)
    if problem is None:
        return entry
    if entry.exists():
        log.warning("vicuna: rebuilding the cached conversion of %s: %s", gguf, problem)
        _discard(entry)
    _build(entry, digest, gguf, convert)
    return entry


def content_digest(path: Path, stamps: Path) -> str:
    """The sha256 of ``path``'s content, hashed once per (resolved path, size, mtime) and remembered in ``stamps``."""
    stat = path.stat()
    key = f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    stamp = stamps / f"{hashlib.sha256(key.encode()).hexdigest()}.json"
    try:
        remembered = json.loads(stamp.read_text(encoding="utf-8"))
        if remembered["key"] == key:
            return remembered["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not hashed yet, or a damaged stamp: hash again
    digest = file_sha256(path)
    stamps.mkdir(parents=True, exist_ok=True)
    _write_atomically(stamp, json.dumps({"key": key, "sha256": digest}))
    return digest


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def entry_problem(entry: Path, digest: str) -> str | None:
    """Why the entry cannot be used (``None``: it can): no manifest, another source, a missing or damaged file."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
        files = dict(manifest["files"])
        if manifest["format"] != FORMAT or manifest["source_sha256"] != digest:
            return "it was built from another file or by another version"
    except FileNotFoundError:
        return "it has no manifest (an interrupted build)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"its manifest does not read ({exc})"
    for name, size in files.items():
        path = entry / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, not {size} (truncated or changed)"
        if name.endswith(".safetensors") and not _safetensors_reads(path):
            return f"{name} is not a readable safetensors file"
    return None


def _safetensors_reads(path: Path) -> bool:
    """True when the header reads and the tensors it lists end where the file does."""
    try:
        with open(path, "rb") as stream:
            length = int.from_bytes(stream.read(8), "little")
            header = json.loads(stream.read(length))
    except (OSError, ValueError):
        return False
    ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    return 8 + length + max(ends, default=0) == path.stat().st_size


def _build(entry: Path, digest: str, gguf: Path, convert: Callable[[Path], None]) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=entry.parent))
    try:
        convert(staging)
        files = {
            str(path.relative_to(staging)): path.stat().st_size for path in sorted(staging.rglob("*")) if path.is_file()
        }
        manifest = {"format": FORMAT, "source": str(gguf), "source_sha256": digest, "files": files}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        try:
            os.replace(staging, entry)
        except OSError:
            if entry_problem(entry, digest) is not None:  # not another process's finished entry
                raise
            log.info("vicuna: another process cached %s first; using its entry", gguf)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _discard(entry: Path) -> None:
    """Move a bad entry out of the way at once (a rename), then delete it."""
    doomed = Path(tempfile.mkdtemp(prefix=".discarded-", dir=entry.parent))
    with contextlib.suppress(FileNotFoundError):  # another process removed it first
        os.replace(entry, doomed / "entry")
    shutil.rmtree(doomed, ignore_errors=True)


def _write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
