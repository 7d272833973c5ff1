"""Landing files of one stream and day, and the checks that quarantine a whole file before it is parsed."""
from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from aiso_pipeline.config import STREAMS, DataDir
from aiso_pipeline.errors import AisoError

FORMATS = {".jsonl.gz": "jsonl", ".ndjson.gz": "jsonl", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".parquet": "parquet", ".csv": "csv"}
SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True)
class LandingFile:
    path: Path
    source_file: str  # path relative to the data directory, as recorded in the tables
    format: str | None  # None: not a supported format
    bytes: int
    mtime: datetime


def file_format(name: str) -> str | None:
    return next((fmt for ext, fmt in FORMATS.items() if name.lower().endswith(ext)), None)


def require_landing(data: DataDir, stream: str) -> Path:
    """The stream's landing folder, or one clear error saying what is missing."""
    if stream not in STREAMS:
        raise AisoError(f"unknown stream {stream!r}: expected one of {', '.join(STREAMS)}")
    if not data.root.is_dir():
        raise AisoError(f"data directory {data.root} does not exist: set AISO_DATA_DIR or run `aiso demo` to create one")
    folder = data.landing(stream)
    if not folder.is_dir():
        raise AisoError(f"landing folder {folder} does not exist: put {stream} exports under "
                        f"{folder}/dt=YYYY-MM-DD/ (see README, 'Your own data')")
    return folder


def partition_files(data: DataDir, stream: str, dt: str) -> list[LandingFile]:
    """Files in landing/<stream>/dt=<dt>/, sorted by name. Hidden and marker files (.*, _*) are not data."""
    require_landing(data, stream)
    folder = data.partition_dir(stream, dt)
    if not folder.is_dir():
        return []
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name.startswith((".", "_")):
            continue
        stat = path.stat()
        files.append(LandingFile(path, path.relative_to(data.root).as_posix(), file_format(path.name),
                                 stat.st_size, datetime.fromtimestamp(stat.st_mtime, timezone.utc)))
    return files


def whole_file_problem(f: LandingFile) -> str | None:
    """Why the file must be quarantined whole before parsing, or None. Row-level problems come later."""
    if f.format is None:
        return f"unsupported_format: expected {', '.join(FORMATS)}"
    if f.bytes == 0:
        return "empty_file"
    with open(f.path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if f.format == "parquet":
        return None if head[:4] == b"PAR1" else "unreadable_file: not a Parquet file"
    if f.path.name.lower().endswith(".gz"):
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, SNIFF_BYTES)
        except zlib.error:
            return "unreadable_file: not a valid gzip file"
    if b"\x00" in head:
        return "binary_file: contains NUL bytes"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # a multi-byte character cut at the sniff boundary is fine
            return "binary_file: not UTF-8 text"
    return None


def preview(f: LandingFile, limit: int = 256) -> str:
    """The first bytes of a file, printable, for the quarantine payload of a whole-file rejection."""
    try:
        opener = gzip.open if f.path.name.lower().endswith(".gz") else open
        with opener(f.path, "rb") as fh:
            head = fh.read(limit)
    except (OSError, EOFError, zlib.error):
        with open(f.path, "rb") as fh:
            head = fh.read(limit)
    return head.decode("utf-8", errors="backslashreplace")
