"""Reading ``.npz`` archives of stored summaries quickly: stored (uncompressed) members are copied
straight out of the archive's bytes, without a file object per member."""

from __future__ import annotations

import ast
import io
import struct
import zipfile
from collections.abc import Callable

import numpy as np

_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, …, file name length, extra field length
_MAGIC = b"\x93NUMPY"
#: Parsed ``.npy`` headers by their text: a summary's arrays share a handful of headers.
_HEADERS: dict[bytes, tuple[tuple[int, ...], bool, np.dtype]] = {}


def read_npz(data: bytes, wanted: Callable[[str], bool] = lambda name: True) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive whose names pass ``wanted``, each a writable copy, as ``np.load`` gives.

    Members stored without compression are read from ``data`` directly; an archive with compressed
    members (summaries written by earlier versions) is read through ``np.load``.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [info for info in archive.infolist() if info.filename.endswith(".npy")]
        if any(info.compress_type != zipfile.ZIP_STORED for info in members):
            with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
                return {name: loaded[name] for name in loaded.files if wanted(name)}
    arrays = {}
    for info in members:
        name = info.filename[:-4]
        if wanted(name):
            arrays[name] = _member(data, info)
    return arrays


def _member(data: bytes, info: zipfile.ZipInfo) -> np.ndarray:
    signature, name_length, extra_length = _LOCAL_HEADER.unpack_from(data, info.header_offset)
    if signature != b"PK\x03\x04":
        raise ValueError(f"{info.filename}: not a zip member at offset {info.header_offset}")
    start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    if data[start:start + 6] != _MAGIC:
        raise ValueError(f"{info.filename}: not a .npy array")
    major = data[start + 6]
    size_format, size_bytes = ("<H", 2) if major == 1 else ("<I", 4)
    (header_length,) = struct.unpack_from(size_format, data, start + 8)
    header_start = start + 8 + size_bytes
    header = data[header_start:header_start + header_length]
    shape, fortran, dtype = _header(header)
    if dtype.hasobject:
        raise ValueError(f"{info.filename}: object arrays are not loaded")
    count = int(np.prod(shape, dtype=np.int64))
    offset = header_start + header_length
    if offset + count * dtype.itemsize > start + info.file_size:
        raise ValueError(f"{info.filename}: the array runs past its member")
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset).copy()
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


def _header(text: bytes) -> tuple[tuple[int, ...], bool, np.dtype]:
    parsed = _HEADERS.get(text)
    if parsed is None:
        document = ast.literal_eval(text.decode("latin1"))
        parsed = (tuple(document["shape"]), bool(document["fortran_order"]),
                  np.lib.format.descr_to_dtype(document["descr"]))
        if len(_HEADERS) < 1024:
            _HEADERS[text] = parsed
    return parsed

