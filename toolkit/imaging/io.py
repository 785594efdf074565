"""Read and write CT volumes and masks: NIfTI, NRRD, MetaImage and DICOM series.

Reading goes through SimpleITK; a folder is read as a DICOM series (the series
with the most files when there are several). Every failure is raised as
:class:`ImageReadError` naming the file, so the caller can list the patient in
``failures.csv`` and go on.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from toolkit.artifacts import atomic_path

#: File name endings SimpleITK reads as single volumes, and the ImageIO that writes them.
VOLUME_SUFFIXES = {
    ".nii.gz": "NiftiImageIO",
    ".nii": "NiftiImageIO",
    ".nrrd": "NrrdImageIO",
    ".nhdr": "NrrdImageIO",
    ".mha": "MetaImageIO",
    ".mhd": "MetaImageIO",
}


class ImageReadError(RuntimeError):
    """A volume could not be read (missing, unreadable, truncated, wrong dimension).

    `path` is the file and `problem` what is wrong with it, in plain words;
    ``str()`` is ``"<path>: <problem>"``, and a caller that knows more (the
    cohort folder, the phase) can phrase its own message from the two.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem

    def __reduce__(self):
        return type(self), (self.path, self.problem)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in VOLUME_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def read_dicom_series(folder: Path) -> sitk.Image:
    """The DICOM series in `folder` with the most slices, as one 3-D volume."""
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise ImageReadError(folder, "no DICOM series in this folder")
    files = max((reader.GetGDCMSeriesFileNames(str(folder), s) for s in series), key=len)
    reader.SetFileNames(files)
    return reader.Execute()


def read_volume(
    path: str | os.PathLike[str], *, dtype=sitk.sitkFloat32, check_gzip: bool = True
) -> sitk.Image:
    """Read a 3-D volume (NIfTI, NRRD, MHA/MHD, or a DICOM series folder) as `dtype`.

    Raises :class:`ImageReadError` naming the file when it is missing,
    unreadable or truncated, or is not a 3-D scalar volume. ``check_gzip=False`` skips
    reading a .nii.gz through once more to check its stream, for a file known to be
    byte for byte one that passed (the same SHA-256).
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(path, "file not found")
    gzipped = check_gzip and path.is_file() and path.name.lower().endswith(".nii.gz")
    length = _gzip_length(path) if gzipped else None
    try:
        image = read_dicom_series(path) if path.is_dir() else sitk.ReadImage(str(path))
    except RuntimeError as exc:  # SimpleITK reports unreadable/truncated files this way
        first = str(exc).strip().splitlines()
        detail = next((line for line in first if "ERROR" in line), first[-1] if first else "")
        raise ImageReadError(path, f"cannot read image ({detail.strip()})") from exc
    if length is not None:
        _check_nifti_length(path, image, length)
    if image.GetDimension() != 3:
        raise ImageReadError(path, f"expected a 3-D volume, found {image.GetDimension()}-D")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ImageReadError(path, "expected a scalar image, found a vector image")
    return sitk.Cast(image, dtype)


_REDO = "re-copy or re-export it"


def _gzip_length(path: Path) -> int:
    """Uncompressed length of a gzip file, read through to its end (CRC and length checked).

    ITK's NIfTI reader returns a truncated or corrupt .nii.gz without complaint
    (the missing voxels read as zeros) or fails with "Unable to determine
    ImageIO reader", so the stream is checked here first and what is wrong is
    said in plain words.
    """
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:2] != b"\x1f\x8b":
        raise ImageReadError(path, _not_gzip(head))
    length = 0
    try:
        with gzip.open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                length += len(block)
    except EOFError as exc:
        raise ImageReadError(
            path, f"truncated gzip stream (the file ends before its end-of-stream marker; {_REDO})"
        ) from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise ImageReadError(path, f"corrupt gzip stream ({_gzip_fault(exc)}; {_REDO})") from exc
    return length


def _not_gzip(head: bytes) -> str:
    if not head:
        return f"empty file (0 bytes; {_REDO})"
    if len(head) == 4 and {348, 540} & {*struct.unpack("<i", head), *struct.unpack(">i", head)}:
        return (
            "not gzip-compressed although named .nii.gz (it is an uncompressed NIfTI file; "
            "rename it to .nii, in the manifest too, or compress it with gzip)"
        )
    return f"not a gzip file although named .nii.gz (no gzip signature at its start; {_REDO})"


def _gzip_fault(exc: Exception) -> str:
    """What a gzip or zlib error means, in plain words."""
    text = str(exc)
    if text.startswith("CRC check failed"):
        return "its CRC check failed: the decompressed bytes are not the bytes that were written"
    if text.startswith("Incorrect length"):
        return "its recorded length differs from the length of the decompressed data"
    if text.startswith("Not a gzipped file"):
        return "unexpected bytes after the end of the compressed data"
    if isinstance(exc, zlib.error):
        return "the compressed data is damaged and cannot be decoded"
    return text


def _check_nifti_length(path: Path, image: sitk.Image, length: int) -> None:
    """Raise when a .nii.gz decompresses to fewer bytes than its header's voxels need."""
    _, _, vox_offset = _nifti_header(path)
    n_bytes = image.GetNumberOfPixels() * image.GetSizeOfPixelComponent()
    needed = max(vox_offset, 348) + n_bytes * image.GetNumberOfComponentsPerPixel()
    if length < needed:
        raise ImageReadError(
            path,
            f"truncated NIfTI data (the file decompresses to {length} bytes, its header "
            f"needs {needed}; {_REDO})",
        )


def _nifti_header(path: Path) -> tuple[str, int, int]:
    """(byte order, datatype code, vox_offset) of a NIfTI-1 or NIfTI-2 file."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        header = handle.read(540)
    if len(header) < 348:
        raise ImageReadError(path, f"truncated NIfTI header ({_REDO})")
    order = "<" if struct.unpack("<i", header[:4])[0] in (348, 540) else ">"
    if struct.unpack(order + "i", header[:4])[0] == 540:
        return (
            order,
            struct.unpack(order + "h", header[12:14])[0],
            struct.unpack(order + "q", header[168:176])[0],
        )
    return (
        order,
        struct.unpack(order + "h", header[70:72])[0],
        int(struct.unpack(order + "f", header[108:112])[0]),
    )


def nan_count(path: str | os.PathLike[str], image: sitk.Image) -> int:
    """Number of NaN voxels of a volume as stored in its file.

    ITK's NIfTI reader turns NaN into 0 silently, so for float NIfTI files the
    raw voxel bytes are read and counted; other formats keep NaN and are
    counted from the image.
    """
    path = Path(path)
    if path.name.lower().endswith((".nii", ".nii.gz")):
        order, datatype, vox_offset = _nifti_header(path)
        dtype = {16: "f4", 64: "f8"}.get(datatype)
        if dtype is None:
            return 0
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as handle:
            handle.seek(max(vox_offset, 348))
            values = np.frombuffer(handle.read(), dtype=order + dtype)
        return int(np.isnan(values).sum())
    return int(np.isnan(sitk.GetArrayViewFromImage(image)).sum())


def write_volume(
    image: sitk.Image, path: str | os.PathLike[str], *, compression_level: int = 1
) -> Path:
    """Write a volume atomically; the format follows the suffix (.nii.gz, .nrrd, .mha)."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix not in VOLUME_SUFFIXES:
        raise ValueError(f"{path}: unsupported image suffix {suffix!r}")
    with atomic_path(path, suffix=suffix) as tmp:
        sitk.WriteImage(image, str(tmp), True, compression_level, imageIO=VOLUME_SUFFIXES[suffix])
    return path


def to_array(image: sitk.Image) -> np.ndarray:
    """The voxel array, indexed (z, y, x)."""
    return sitk.GetArrayFromImage(image)


def same_geometry(
    a: sitk.Image,
    b: sitk.Image,
    tolerance: float = 1e-3,
    names: tuple[str, str] | None = None,
) -> str | None:
    """None when `a` and `b` share size, spacing, origin and direction; else what differs.

    The first difference found, `b`'s value first, in plain numbers with units:
    ``"spacing 2.5 x 2 x 5 mm vs 2 x 2 x 5 mm"``, ``"size 96 x 96 x 2 voxels vs
    96 x 96 x 16 voxels"``, ``"origin (0, 0, 10) mm vs (0, 0, 0) mm"``,
    ``"direction [1, 0, 0; 0, 1, 0; 0, 0, -1] vs [...]"`` (rows of the direction
    cosine matrix). `names` = (name of `a`, name of `b`) labels each value.
    Spacing, origin and direction differ when a component differs by more than
    `tolerance` times the largest magnitude (at least 1).
    """
    label_a, label_b = (f" ({n})" for n in names) if names else ("", "")
    if a.GetSize() != b.GetSize():
        return f"size {_by(b.GetSize())} voxels{label_b} vs {_by(a.GetSize())} voxels{label_a}"
    for name, shown in (
        ("spacing", lambda v: f"{_by(v)} mm"),
        ("origin", lambda v: f"({', '.join(map(_number, v))}) mm"),
        ("direction", _matrix),
    ):
        va, vb = (np.asarray(getattr(image, f"Get{name.title()}")()) for image in (a, b))
        scale = max(1.0, float(np.max(np.abs(va))))
        if np.max(np.abs(va - vb)) > tolerance * scale:
            return f"{name} {shown(vb)}{label_b} vs {shown(va)}{label_a}"
    return None


def _number(value: float) -> str:
    """A plain number: at most 6 significant digits, float noise and -0 removed."""
    return f"{round(float(value), 6) + 0.0:g}"


def _by(values) -> str:
    return " x ".join(map(_number, values))


def _matrix(values) -> str:
    n = round(len(values) ** 0.5)
    rows = (", ".join(map(_number, values[i : i + n])) for i in range(0, len(values), n))
    return f"[{'; '.join(rows)}]"
