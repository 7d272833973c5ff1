"""Publishing warehouse.duckdb for analysts: atomically, and once history is long, at a cost that follows what
the runs changed rather than how much history there is.

Two published copies take turns, `.work/published-a.duckdb` and `published-b.duckdb`, and warehouse.duckdb is a hard
link to the current one. A publish brings the other one (the standby) up to date, then renames a new link over
warehouse.duckdb: an analyst's open connection keeps the file it opened (its snapshot), new connections see the
whole run. The standby is updated in place, in one transaction, by re-copying the partitions meta.partition_writes
lists since it was last published, when nobody has it open, its tables match the working database's, and those
partitions are a small share of the rows (INCREMENTAL_SHARE). Otherwise (first publish, a reader still on it from two
publishes ago, a table added or altered, a large change, anything unexpected) it is replaced by a full copy of the
working database, written beside it and renamed over it.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from aiso_pipeline.config import DataDir
from aiso_pipeline.errors import AisoError
from aiso_pipeline.warehouse import _open_writer, run

SLOTS = ("a", "b")
# Updating in place re-encodes every row it copies (DuckDB compresses it again); a full copy only moves bytes. On
# the reference machine (2 cores, SSD) re-encoding a row cost 20-50x copying its share of the file (0.75-1.2 s per
# 500k rows in place; 0.53 s for a full copy of an 11M-row, 634 MB warehouse). So a publish updates in place only
# when the partitions to copy hold at most this share of all rows: the standby catches up on two runs, so with a
# day per run that is from ~65 days of history on. $AISO_PUBLISH_INCREMENTAL_SHARE overrides it (1: in place
# whenever possible; 0: always a full copy).
INCREMENTAL_SHARE = 0.03
STANDBY = "standby"  # the name the standby is attached under (the publish_*.sql files use it)


@dataclass(frozen=True)
class Publication:
    """What publish() did. Path-like: it stands for the published warehouse.duckdb, as publish()'s Path used to."""
    path: Path
    method: str         # 'incremental' | 'full copy'
    partitions: tuple[tuple[str, date | None], ...]  # (table, dt) re-copied in place (incremental); dt None: all
    rows: int           # rows copied in place (incremental)
    bytes_copied: int   # database file bytes copied (full copy)
    seconds: float
    detail: str = ""    # why a full copy

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def summary(self) -> str:
        if self.method == "incremental":
            return f"incremental: {len(self.partitions)} partition(s), {self.rows:,} rows in {self.seconds:.2f} s"
        return f"full copy ({self.detail}): {self.bytes_copied / 1e6:,.1f} MB in {self.seconds:.2f} s"


class _FullCopy(Exception):
    """The standby cannot be updated in place; the message says why."""


def slot_path(data: DataDir, slot: str) -> Path:
    return data.work_db.parent / f"published-{slot}.duckdb"


def publish(data: DataDir) -> Publication:
    """Publish the working database as warehouse.duckdb, atomically; see the module docstring."""
    if not data.work_db.exists():
        raise AisoError(f"nothing to publish: {data.work_db} does not exist (run `aiso run --date YYYY-MM-DD` first)")
    started = time.perf_counter()
    share = _incremental_share()
    con = _open_writer(data.work_db, {})  # held throughout: no run writes and no other publish runs meanwhile
    try:
        con.execute("SET enable_progress_bar = false")
        run(con, "warehouse/sql/changes.sql")  # a working database from before the change log
        database_id, pruned_through, upto = run(con, "warehouse/sql/publish_state.sql").fetchone()
        database_id = str(database_id)
        _remove_leftovers(data)
        slot = _standby_slot(data)
        standby = slot_path(data, slot)
        partitions, rows, copied = (), 0, 0
        try:
            partitions, rows = _update_in_place(con, standby, database_id, pruned_through, upto, share)
            method, detail = "incremental", ""
        except _FullCopy as why:
            method, detail = "full copy", str(why)
            copied = _full_copy(con, data.work_db, standby, database_id, upto)
            other = next(s for s in SLOTS if s != slot)
            if not slot_path(data, other).exists():
                # first publish: make the other copy too, so that the next publish can already update in place
                _copy_file(standby, slot_path(data, other))
                run(con, "warehouse/sql/publish_record.sql", slot=other, seq=upto)
        if not _swap(standby, data.warehouse):
            detail = (detail + "; " if detail else "") + "no hard links here, so warehouse.duckdb is a copy"
        run(con, "warehouse/sql/publish_record.sql", slot=slot, seq=upto)  # and prune the log
    finally:
        con.close()
    return Publication(data.warehouse, method, partitions, rows, copied, time.perf_counter() - started, detail)


def _standby_slot(data: DataDir) -> str:
    """The slot warehouse.duckdb does not point at: analysts may have the current one open."""
    current = _file_id(data.warehouse)
    for slot, other in zip(SLOTS, reversed(SLOTS)):
        if current is not None and _file_id(slot_path(data, slot)) == current:
            return other
    # warehouse.duckdb is neither (first publish, an older pipeline's copy, no hard links): the stalest slot
    return min(SLOTS, key=lambda s: slot_path(data, s).stat().st_mtime if slot_path(data, s).exists() else -1.0)


def _update_in_place(con: duckdb.DuckDBPyConnection, standby: Path, database_id: str, pruned_through: int,
                     upto: int, share: float) -> tuple[tuple, int]:
    """Bring `standby` from the seq it records to `upto`; raise _FullCopy when it cannot be."""
    if not standby.exists():
        raise _FullCopy("no previous copy to update")
    if _open_in_this_process(standby):
        # DuckDB's file lock only keeps other processes out: a reader in this one shows as an open descriptor
        raise _FullCopy(f"{standby.name} is open in this process")
    try:
        con.execute(f"ATTACH ? AS {STANDBY}", [str(standby)])
    except duckdb.Error as e:
        held = "lock" in str(e).lower()  # an analyst still reading it, from two publishes ago
        raise _FullCopy(f"{standby.name} is held open by a reader" if held else
                        f"cannot open {standby.name}: {str(e).splitlines()[0]}") from None
    try:
        counts = _apply_changes(con, database_id, pruned_through, upto, share)
        # Into the file itself: no .wal beside a published copy. Without vacuuming: it re-encodes the row groups a
        # day's delete left partly empty, which doubled the time and grew the file (emptied groups go regardless;
        # measured 24 rewrites of a 2M-row copy: 129 MB and 0.5 s each, vs 150 MB and 1.1 s)
        con.execute("SET max_vacuum_tasks = 0")
        try:
            con.execute(f"CHECKPOINT {STANDBY}")
        finally:
            con.execute("RESET max_vacuum_tasks")
        return counts
    except duckdb.Error as e:
        raise _FullCopy(f"update failed: {str(e).splitlines()[0]}") from None
    finally:
        con.execute(f"DETACH {STANDBY}")


def _apply_changes(con: duckdb.DuckDBPyConnection, database_id: str, pruned_through: int, upto: int,
                   share: float) -> tuple[tuple, int]:
    try:
        found = con.execute(f"SELECT database_id, seq FROM {STANDBY}.meta.published").fetchall()
    except duckdb.CatalogException:
        found = []
    if len(found) != 1:
        raise _FullCopy("the previous copy records no meta.published")
    copied_from, since = str(found[0][0]), found[0][1]
    if copied_from != database_id:
        raise _FullCopy("the previous copy is of another working database")
    if not pruned_through <= since <= upto:
        raise _FullCopy(f"the changes since the previous copy (seq {since}) are no longer logged")
    work = con.execute("SELECT current_database()").fetchone()[0]
    layout = run(con, "warehouse/sql/publish_schema.sql", db=work).fetchall()
    if layout != run(con, "warehouse/sql/publish_schema.sql", db=STANDBY).fetchall():
        raise _FullCopy("tables were added or changed")
    tables = sorted({(schema, name) for kind, schema, name, *_ in layout if kind == "table"})
    changes = run(con, "warehouse/sql/publish_changes.sql", since=since, upto=upto).fetchall()
    whole = {table for table, day in changes if day is None}
    changes = [(table, day) for table, day in changes if day is None or table not in whole]
    for table, _ in changes:
        if tuple(table.split(".")) not in tables:
            raise _FullCopy(f"the change log names {table}, which is not a table")

    def name(db: str, schema: str, table: str) -> str:
        return ".".join('"' + part.replace('"', '""') + '"' for part in (db, schema, table))

    def count(db: str, table: str, day=None) -> int:  # from metadata or zone maps: milliseconds
        where, params = ("WHERE dt = ?", [day]) if day is not None else ("", [])
        return con.execute(f"SELECT count(*) FROM {name(db, *table.split('.'))} {where}", params).fetchone()[0]

    to_copy = sum(count(work, table, day) for table, day in changes)
    total = sum(count(work, f"{s}.{t}") for s, t in tables)
    if to_copy > share * total:
        raise _FullCopy(f"{to_copy:,} of {total:,} rows changed: a full copy is cheaper")
    rows = 0
    con.execute("BEGIN TRANSACTION")
    try:
        for table, day in changes:
            target, source = name(STANDBY, *table.split(".")), name(work, *table.split("."))
            where, params = ("WHERE dt = ?", [day]) if day is not None else ("", [])
            con.execute(f"DELETE FROM {target} {where}", params)
            rows += con.execute(f"INSERT INTO {target} SELECT * FROM {source} {where}", params).fetchone()[0]
        # A safety net for writes that bypassed transaction(writes=...): row counts come from metadata, ~1 ms
        same = con.execute("SELECT " + ", ".join(
            f"(SELECT count(*) FROM {name(STANDBY, s, t)}) = (SELECT count(*) FROM {name(work, s, t)})"
            for s, t in tables)).fetchone() if tables else ()
        differ = [f"{s}.{t}" for (s, t), ok in zip(tables, same) if not ok]
        if differ:
            raise _FullCopy(f"{', '.join(differ)} changed outside the change log")
        run(con, "warehouse/sql/publish_mark.sql", seq=upto)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return tuple(changes), rows


def _incremental_share() -> float:
    raw = os.environ.get("AISO_PUBLISH_INCREMENTAL_SHARE", str(INCREMENTAL_SHARE))
    try:
        share = float(raw)
    except ValueError:
        share = -1.0
    if not 0 <= share <= 1:
        raise AisoError(f"AISO_PUBLISH_INCREMENTAL_SHARE must be a number from 0 to 1, not {raw!r}")
    return share


def _full_copy(con: duckdb.DuckDBPyConnection, work_db: Path, standby: Path, database_id: str, upto: int) -> int:
    """Replace `standby` by a copy of the working database, written under a temp name and renamed when complete.
    Returns the bytes copied."""
    con.execute("CHECKPOINT")  # fold the WAL into the file so the copy is complete on its own
    # The old standby goes first, so the disk holds three databases at most (working, current, new copy); a reader
    # still holding it keeps it. Its WAL too: replayed on the new file, it would corrupt it.
    standby.unlink(missing_ok=True)
    _wal(standby).unlink(missing_ok=True)
    tmp = _temp_name(standby)
    try:
        shutil.copyfile(work_db, tmp)  # while `con` holds the writer lock: nobody writes mid-copy
        size = tmp.stat().st_size
        copy = duckdb.connect(str(tmp))
        try:
            run(copy, "warehouse/sql/published.sql", database_id=database_id, seq=upto)
            copy.execute("CHECKPOINT")
        finally:
            copy.close()
        os.replace(tmp, standby)  # under its name only once complete
    finally:
        tmp.unlink(missing_ok=True)
        _wal(tmp).unlink(missing_ok=True)
    return size


def _copy_file(source: Path, target: Path) -> None:
    tmp = _temp_name(target)
    try:
        shutil.copyfile(source, tmp)
        _wal(target).unlink(missing_ok=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _swap(standby: Path, warehouse: Path) -> bool:
    """Point warehouse.duckdb at `standby` atomically (a new hard link renamed over it). Where the file system has
    no hard links, a copy is renamed over it instead (atomic too, but a full copy each time): returns False then."""
    tmp = _temp_name(warehouse)
    try:
        try:
            os.link(standby, tmp)
            linked = True
        except OSError:
            shutil.copyfile(standby, tmp)
            linked = False
        os.replace(tmp, warehouse)
    finally:
        tmp.unlink(missing_ok=True)
    # A WAL next to warehouse.duckdb can only be left by someone who opened the old file read-write: DuckDB would
    # replay it into the new one
    _wal(warehouse).unlink(missing_ok=True)
    return linked


def _remove_leftovers(data: DataDir) -> None:
    """Temp files of a publish that crashed (none can be running: we hold the writer lock)."""
    for folder, pattern in ((data.work_db.parent, ".published-*.tmp*"), (data.root, f".{data.warehouse.name}.*.tmp")):
        for path in folder.glob(pattern):
            path.unlink(missing_ok=True)


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _open_in_this_process(path: Path) -> bool:
    """Whether this process has `path` (under any name: warehouse.duckdb is a hard link) open."""
    target = _file_id(path)
    fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return False
    for fd in fds:
        try:
            st = os.stat(f"{fd_dir}/{fd}")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == target:
            return True
    return False
