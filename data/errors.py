"""The project's exception hierarchy. Third-party errors are translated at one boundary (data/hub.py)."""

from __future__ import annotations


class LeaderboardError(Exception):
    """Base class of every error this project raises on purpose."""


class HubError(LeaderboardError):
    """The Hub could not answer (network, rate limit, server error) or answered something unusable."""


class HubUnreachable(HubError, ConnectionError):
    """No answer from the Hub at all, after retries."""


class HubTimeout(HubUnreachable, TimeoutError):
    """An interactive client's time budget ran out before the Hub answered."""


class ModelNotFound(HubError, LookupError):
    """The repo does not exist, or is private and we have no access."""


class RevisionNotFound(HubError, LookupError):
    """The repo exists but the revision (branch, tag or sha) does not."""


class GatedModel(HubError, PermissionError):
    """The repo is gated and no token with access is configured."""


class EntryNotFound(HubError, LookupError):
    """A file is missing from the repo at that revision."""


class InvalidRepoId(HubError, ValueError):
    """A repo id or revision the Hub client itself refuses (a hostile name in a listing, a typo)."""


class FileTooLarge(HubError):
    """A file read from the Hub is larger than we read (a hostile config.json)."""


class SubmissionRejected(LeaderboardError, ValueError):
    """A user submission failed validation; ``reason`` is a sentence to show the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ScoringError(LeaderboardError):
    """A scorer failed; the message says where (target and step, chain and draw)."""


class StoreError(LeaderboardError):
    """The store could not be opened, migrated or written; the message is one sentence for a person."""


class StoreBusy(StoreError):
    """Another process held the store's write lock for longer than the busy timeout."""


class StoreReadOnly(StoreError):
    """The store's file (or volume) cannot be written: it can only be browsed."""


class StoreDamaged(StoreError):
    """SQLite finds the store's file corrupt, or it is not a database."""


class StoreFull(StoreError):
    """The disk holding the store is full; the write was rolled back."""


class SnapshotError(LeaderboardError, ValueError):
    """A results snapshot file is missing, unreadable, of an unknown format, or has a malformed record."""


def public_sentence(error: StoreError) -> str:
    """What a user is told of a store fault: one sentence per kind, naming no path or host (the log has the
    message itself)."""
    if isinstance(error, StoreBusy):
        return "The leaderboard is busy saving other work: nothing was saved; try again in a minute."
    if isinstance(error, StoreReadOnly):
        return "The leaderboard is read-only just now: it can be browsed, but nothing can be queued."
    if isinstance(error, StoreFull):
        return "The server's disk is full: nothing was saved; try again later."
    if isinstance(error, StoreDamaged):
        return "The leaderboard's data cannot be read just now; it has been logged and will be repaired."
    return "The leaderboard's store failed just now: nothing was saved; it has been logged."
