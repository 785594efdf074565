"""Atomic writes and provenance for every artifact sigkit produces.

Every file is written to a temporary name in the destination folder and renamed
into place, so an interrupted run never leaves a half-written file. JSON and
Parquet artifacts carry provenance: the sigkit version, the hashes of their
inputs, the settings that produced them and, where the network was involved,
the origin of its weights ("imagenet-keras", "imagenet-torchvision" or
"random").
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from toolkit._version import __version__


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` on success.

    `suffix` ends the temporary name, for writers that pick the format from it
    (SimpleITK: ".nii.gz"). The file is made readable by all (0644), as an
    ordinary file would be, not private as `mkstemp` leaves it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.chmod(0o644)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> Path:
    """Write `data` as indented JSON, atomically. NaN is written as null."""
    text = json.dumps(_nan_to_none(data), indent=2, default=_default, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return Path(path)


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, np.floating) and not np.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    if isinstance(obj, np.ndarray) and obj.dtype.kind == "f":
        return [_nan_to_none(v) for v in obj.tolist()]
    return obj


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_parquet(path: str | os.PathLike[str], frame: Any, provenance: Mapping | None = None):
    """Write a DataFrame to Parquet atomically; provenance goes in the schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=True)
    if provenance is not None:
        meta = dict(table.schema.metadata or {})
        meta[b"sigkit"] = json.dumps(_nan_to_none(dict(provenance)), default=_default).encode()
        table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def read_parquet_provenance(path: str | os.PathLike[str]) -> dict[str, Any]:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(b"sigkit")
    return json.loads(raw) if raw else {}


def save_figure(fig: Any, stem: str | os.PathLike[str], formats: tuple[str, ...] = ("png", "svg")):
    """Save a matplotlib figure as PNG and SVG beside each other, atomically."""
    stem = Path(stem)
    out = []
    for fmt in formats:
        target = stem.with_suffix(f".{fmt}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
        out.append(target)
    return out


def file_hash(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def settings_hash(settings: Mapping[str, Any]) -> str:
    """A stable hash of a settings mapping (keys sorted)."""
    text = json.dumps(_nan_to_none(dict(settings)), sort_keys=True, default=_default)
    return hashlib.sha256(text.encode()).hexdigest()


def provenance(
    *,
    inputs: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
    weights: str | None = None,
    synthetic: bool | None = None,
) -> dict[str, Any]:
    """The provenance block every artifact carries."""
    block: dict[str, Any] = {"sigkit_version": __version__}
    block["inputs"] = dict(inputs or {})
    block["settings"] = dict(settings or {})
    block["settings_hash"] = settings_hash(block["settings"])
    if weights is not None:
        block["weights"] = weights
    if synthetic is not None:
        block["synthetic"] = synthetic
    return block
