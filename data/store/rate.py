"""The submission rate limit's events in the store: shared by every process and kept across restarts."""

from __future__ import annotations

from datetime import datetime, timedelta

from data.store.db import Database
from data.store.rows import ts


class RateEvents:
    """The submission rate limit's events (``store.rate``), over the store's database and its connection policy."""

    def __init__(self, db: Database):
        self._db = db

    def take_slot(self, submitter: str, kind: str, limit: int, window: timedelta, now: datetime
                  ) -> tuple[int | None, datetime | None]:
        """In one transaction: if ``submitter`` has fewer than ``limit`` events of ``kind`` in the ``window``
        before ``now``, record one at ``now`` and return ``(its id, None)``; else record nothing and return
        ``(None, when a slot frees)``. Events older than the window are forgotten on the way."""
        since = ts(now - window)
        with self._db._write(bump_version=False) as conn:
            conn.execute("DELETE FROM submission_events WHERE at <= ?", (since,))
            times = [row[0] for row in conn.execute(
                "SELECT at FROM submission_events WHERE submitter = ? AND kind = ? AND at > ? ORDER BY at",
                (submitter, kind, since))]
            if len(times) >= limit:
                return None, datetime.fromisoformat(times[-limit]) + window
            cursor = conn.execute("INSERT INTO submission_events (submitter, kind, at) VALUES (?, ?, ?)",
                                  (submitter, kind, ts(now)))
            return cursor.lastrowid, None

    def slot_free_at(self, submitter: str, kind: str, limit: int, window: timedelta, now: datetime
                     ) -> datetime | None:
        """None when ``submitter`` has room for one more event of ``kind``; else when a slot frees (reads only)."""
        since = ts(now - window)
        with self._db._connect() as conn:
            times = [row[0] for row in conn.execute(
                "SELECT at FROM submission_events WHERE submitter = ? AND kind = ? AND at > ? ORDER BY at",
                (submitter, kind, since))]
        return None if len(times) < limit else datetime.fromisoformat(times[-limit]) + window

    def release_slot(self, event_id: int) -> None:
        """Forget one event (its submission was not stored after all)."""
        with self._db._write(bump_version=False) as conn:
            conn.execute("DELETE FROM submission_events WHERE id = ?", (event_id,))
