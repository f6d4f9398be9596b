"""The SQLite file under the store: connections, write transactions, migrations, and its faults as sentences.

Opening a store takes no write lock when its schema is current: reads never wait for a writer (WAL mode), and a
store on a read-only file or volume opens read-only (browsable; every write raises ``StoreReadOnly``). Every
sqlite3 error leaves here as a ``StoreError`` subclass whose message is one sentence for a person: busy
(locked), read-only, damaged, full, or cannot be opened. Every connection sets ``secure_delete``: a deleted row's
bytes are overwritten with zeros in the file, not left in free space; older copies in the WAL go when it is emptied
(``truncate_wal``, or SQLite's own checkpoint when the last connection closes).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from data.errors import StoreBusy, StoreDamaged, StoreError, StoreFull, StoreReadOnly
from data.store.schema import MIGRATIONS

logger = logging.getLogger(__name__)


def store_error(error: sqlite3.Error, db_path: Path, busy_timeout_s: float) -> StoreError:
    """The StoreError (with its sentence) for a sqlite3 error on the store at ``db_path``."""
    name = getattr(error, "sqlite_errorname", "") or ""
    text = str(error)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return StoreBusy(f"The store {db_path} is busy: another process has held its write lock for more than "
                         f"{busy_timeout_s:g} s. Nothing was written; try again.")
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return StoreReadOnly(f"The store {db_path} is read-only: it can be browsed, but nothing can be written to "
                             "it (check the permissions of the file and its folder).")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text:
        return StoreDamaged(f"The store {db_path} is damaged ({text}): restore it from a backup, or start on a "
                            "new file with --db.")
    if name.startswith("SQLITE_FULL") or "full" in text:
        return StoreFull(f"The disk holding the store {db_path} is full: nothing was written; free some space "
                         "and try again.")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return StoreError(f"Cannot open the store {db_path}: check that its folder exists and can be read.")
    return StoreError(f"The store {db_path} failed: {text}.")


class Database:
    """One SQLite file; ``Store`` adds the records on top."""

    def __init__(self, db_path: Path | str, *, busy_timeout_s: float = 60.0):
        self.db_path = Path(db_path)
        self.busy_timeout_s = busy_timeout_s
        self.read_only = False
        self._uri: str | None = None  # set when the store is opened read-only
        self._open()

    # ----------------------------------------------------------------- opening
    def _open(self) -> None:
        if self.db_path.exists() and not _is_writable(self.db_path):
            self._open_read_only()
            return
        try:
            self.migrate()
        except StoreReadOnly:  # a read-only volume says so only when written to
            self._open_read_only()

    def _open_read_only(self) -> None:
        self.read_only = True
        quoted = urllib.parse.quote(str(self.db_path.resolve()))
        for uri in (f"file:{quoted}?mode=ro", f"file:{quoted}?immutable=1"):  # immutable: WAL without a -shm
            self._uri = uri
            try:
                version = self.schema_version()
                break
            except StoreDamaged:
                raise
            except StoreError:
                continue
        else:
            raise StoreError(f"Cannot open the store {self.db_path}: it is read-only and cannot even be read.")
        if version != len(MIGRATIONS):
            raise StoreReadOnly(f"The store {self.db_path} is read-only and has schema version {version}; this "
                                f"code needs {len(MIGRATIONS)}, which a read-only file cannot be migrated to.")
        logger.warning("%s is read-only: it can be browsed, nothing will be written to it", self.db_path)

    # ----------------------------------------------------------------- plumbing
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            if self._uri is not None:
                conn = sqlite3.connect(self._uri, uri=True, timeout=self.busy_timeout_s, isolation_level=None)
            else:
                conn = sqlite3.connect(self.db_path, timeout=self.busy_timeout_s, isolation_level=None)
        except sqlite3.Error as e:
            raise store_error(e, self.db_path, self.busy_timeout_s) from e
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA secure_delete = ON")  # deleted rows (a user's personal rows) are overwritten
            self._configure(conn)
            yield conn
        except sqlite3.Error as e:
            raise store_error(e, self.db_path, self.busy_timeout_s) from e
        finally:
            conn.close()

    def _configure(self, conn: sqlite3.Connection) -> None:
        """Per-connection settings beyond the defaults (none here; a test store sets a size limit)."""

    @contextmanager
    def _write(self, *, bump_version: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it lands, or none of it does. Bumps the data version (the views'
        cache key) unless told the write changes nothing they show."""
        if self.read_only:
            raise StoreReadOnly(f"The store {self.db_path} is read-only: it can be browsed, but nothing can be "
                                "written to it.")
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                if bump_version:
                    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'data_version'")
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (a full disk)
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def truncate_wal(self) -> bool:
        """Copy the WAL into the file and empty it, without waiting (so the bytes of deleted rows leave the WAL
        too): False when a reader or writer is in the way (a later call does it) or the store is read-only."""
        if self.read_only:
            return False
        with self._connect() as conn:
            conn.execute("PRAGMA busy_timeout = 0")
            return conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0

    # ---------------------------------------------------------------- schema
    def migrate(self) -> int:
        """Bring the schema to the latest version; returns that version. A current schema takes no lock."""
        if self.db_path.parent and not self.db_path.parent.exists():
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
        version = self.schema_version() if self.db_path.exists() else 0
        if version > len(MIGRATIONS):
            raise StoreError(f"{self.db_path} has schema version {version}, newer than this code knows "
                             f"({len(MIGRATIONS)}): upgrade the project")
        if version == len(MIGRATIONS):
            return version
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._apply_migrations(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return len(MIGRATIONS)

    def _apply_migrations(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # again, under the lock
        for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            logger.info("%s: migrated schema to version %d", self.db_path, number)

    def schema_version(self) -> int:
        with self._connect() as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]

    def integrity_check(self) -> str:
        with self._connect() as conn:
            return conn.execute("PRAGMA integrity_check").fetchone()[0]

    def quick_check(self) -> None:
        """Raise StoreDamaged (one sentence) unless SQLite's quick_check finds the file sound."""
        with self._connect() as conn:
            rows = [r[0] for r in conn.execute("PRAGMA quick_check(3)")]
        if rows != ["ok"]:
            raise StoreDamaged(f"The store {self.db_path} is damaged (quick_check: {'; '.join(rows)}): restore it "
                               "from a backup, or start on a new file with --db.")


def _is_writable(db_path: Path) -> bool:
    """Can this process write the file, and create its -wal and -shm files beside it?"""
    folder = db_path.parent if str(db_path.parent) else Path(".")
    return os.access(db_path, os.W_OK) and os.access(folder, os.W_OK)
