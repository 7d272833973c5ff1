"""Landing files of one stream and day, and the checks that quarantine a whole file before it is parsed."""
from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from aiso_pipeline.config import STREAMS, DataDir
from aiso_pipeline.errors import AisoError

SNIFF_BYTES = 64 * 1024
GZIP_MAGIC, ZSTD_MAGIC, PARQUET_MAGIC = b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"PAR1"
CONTAINERS = "JSON lines, a JSON document, Parquet or CSV, plain, gzip or zstd"
CSV_DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class LandingFile:
    path: Path
    source_file: str  # path relative to the data directory, as recorded in the tables
    bytes: int
    mtime: datetime
    problem: str | None = None  # set when the file must not be opened at all (quarantined whole)


@dataclass(frozen=True)
class Container:
    """What a file holds, told from its bytes (never its name): `format` jsonl | json | json_array | parquet | csv,
    `compression` none | gzip | zstd | zstd_frames (length-prefixed zstd frames, one JSON object each); or `problem`,
    why it fits no reader (the file is quarantined whole)."""
    format: str | None = None
    compression: str = "none"
    problem: str | None = None
    header: tuple[str, ...] = ()  # CSV: the header's column names
    delimiter: str = ","  # CSV

    @property
    def label(self) -> str:
        return self.format if self.compression == "none" else f"{self.format}+{self.compression}"


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
    """Files in landing/<stream>/dt=<dt>/ and its subfolders, sorted by name. Hidden and marker files and folders
    (.*, _*: `_SUCCESS`, a writer's `_temporary/` or `.staging/`) are not data. A file that cannot be read safely
    is listed with its `problem` (quarantined whole, never opened): a link to outside the data directory, or a name
    that is not UTF-8 (no table can hold it)."""
    require_landing(data, stream)
    folder = data.partition_dir(stream, dt)
    if not folder.is_dir():
        return []
    root = data.root.resolve()
    files = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        for name in filenames:
            if name.startswith((".", "_")):
                continue
            path = Path(dirpath) / name
            relative = os.fsencode(path.relative_to(data.root)).decode("utf-8", "backslashreplace")
            problem = None
            if relative != path.relative_to(data.root).as_posix():
                problem = "unsupported_file_name: the name is not UTF-8: rename the file"
            real = path.resolve()
            if not real.is_relative_to(root):
                problem = "outside_data_directory: a link to a file outside the data directory is not read"
            elif not real.is_file():
                continue  # a link to a folder or to nothing
            try:
                stat = path.stat() if problem is None else path.lstat()
            except OSError:
                continue  # removed since it was listed
            files.append(LandingFile(path, relative, stat.st_size, datetime.fromtimestamp(stat.st_mtime, timezone.utc),
                                     problem))
    return sorted(files, key=lambda f: f.source_file)


def _decompressed_head(raw: bytes, compression: str) -> bytes:
    if compression == "gzip":  # member after member (an empty first member is legal gzip)
        out, rest = b"", raw
        while rest and len(out) < SNIFF_BYTES:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += d.decompress(rest, SNIFF_BYTES - len(out))
            if not d.eof:
                break
            rest = d.unused_data
        return out
    if compression == "zstd":
        return _zstd_head(raw)
    return raw


def _zstd_head(raw: bytes) -> bytes:
    import io

    import zstandard
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)) as reader:
        out = b""
        while len(out) < SNIFF_BYTES:
            try:
                chunk = reader.read(SNIFF_BYTES - len(out))
            except zstandard.ZstdError:
                if out:  # the sniffed bytes end mid-frame: what came before is enough
                    break
                raise
            if not chunk:
                break
            out += chunk
        return out


def container(f: LandingFile, stream: str | None = None) -> Container:
    """What the file holds, from its first bytes; Container.problem when it is empty or fits no reader. JSON lines
    when any of the first lines opens an object; CSV when the first line is a header naming keys of the stream."""
    if f.problem:
        return Container(problem=f.problem)
    if f.bytes == 0:
        return Container(problem="empty_file")
    with open(f.path, "rb") as fh:
        raw = fh.read(SNIFF_BYTES)
    if raw.startswith(PARQUET_MAGIC):
        return Container("parquet")
    if len(raw) >= 8 and raw[4:8] == ZSTD_MAGIC:
        # the Collector's file exporter with `compression: zstd` (legacy path): each request is one zstd frame
        # after its 4-byte big-endian length (exportMessageAsBuffer)
        return Container("jsonl", "zstd_frames")
    compression = "gzip" if raw.startswith(GZIP_MAGIC) else "zstd" if raw.startswith(ZSTD_MAGIC) else "none"
    try:
        head = _decompressed_head(raw, compression)
    except Exception:  # noqa: BLE001 - zlib.error, zstandard.ZstdError: whatever the codec says, it is not one
        return Container(problem=f"unreadable_file: not a valid {compression} file")
    if b"\x00" in head:
        return Container(problem="binary_file: contains NUL bytes")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # a multi-byte character cut at the sniff boundary is fine
            return Container(problem="binary_file: not UTF-8 text")
        text = head[:e.start].decode("utf-8")
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        return Container(problem="empty_file")
    lines = [line.strip() for line in stripped.split("\n")]
    complete = lines[:-1] if len(lines) > 1 and len(head) == SNIFF_BYTES else lines  # the last may be cut
    non_blank = [line for line in complete if line] or lines[:1]
    first = non_blank[0]
    if first.startswith("[") and (first == "[" or len(non_blank) == 1):
        return Container("json_array", compression)  # one JSON document: an array of records
    if first == "{":
        return Container("json", compression)  # one JSON document: a pretty-printed object
    if any(line.startswith("{") for line in non_blank):
        return Container("jsonl", compression)  # lines that are not objects are quarantined one by one
    if stream is not None:
        # CSV: the delimiter whose header names the most of the stream's keys
        keys = _top_level_keys(stream)
        best = max(CSV_DELIMITERS, key=lambda d: len(set(_csv_header(first, d)) & keys))
        if set(_csv_header(first, best)) & keys:
            return Container("csv", compression, header=tuple(_csv_header(first, best)), delimiter=best)
    return Container(problem=f"unsupported_format: not {CONTAINERS} (no JSON object, and no CSV header naming "
                             f"{stream or 'the stream'}'s keys, in the first {SNIFF_BYTES // 1024} KiB)")


def _csv_header(line: str, delimiter: str = ",") -> list[str]:
    import csv
    try:
        return [cell.strip() for cell in next(csv.reader([line], delimiter=delimiter))]
    except (csv.Error, StopIteration):
        return []


def _top_level_keys(stream: str) -> frozenset[str]:
    from aiso_pipeline.ingest.sources import top_level_keys
    return top_level_keys(stream)


def preview(f: LandingFile, limit: int = 256) -> str:
    """The first bytes of a file, printable, for the quarantine payload of a whole-file rejection."""
    with open(f.path, "rb") as fh:
        head = fh.read(limit)
    if head.startswith(GZIP_MAGIC):
        try:
            with gzip.open(f.path, "rb") as fh:
                head = fh.read(limit)
        except (OSError, EOFError, zlib.error):
            pass
    return head.decode("utf-8", errors="backslashreplace")
