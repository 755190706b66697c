"""Step: land one feed's new files, purge its rows past retention, and reconcile every file;
in archive mode (`Settings.raw_files`), move the landed files to the archive."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from ml.landing import contracts
from ml.landing.archive import archive_landed_files, expire_archive
from ml.landing.checks import mask_reason
from ml.landing.loader import FeedReport, Loader, reconciliation
from ml.settings import Settings
from ml.sql import quote_ident

QUARANTINE_EXAMPLES = 20


@dataclass
class LandingStep:
    """What landing one feed did."""

    feed: str
    report: FeedReport
    purged: dict | None
    reconciliation: pd.DataFrame
    quarantine_examples: list[str]  # personal values masked: they go to logs and metadata
    rows_in_table: int
    archived: list[str] = field(default_factory=list)  # files moved to the archive (archive mode)
    archive_days_removed: list[str] = field(default_factory=list)  # expired day folders

    @property
    def files_not_reconciling(self) -> pd.DataFrame:
        return self.reconciliation[~self.reconciliation["reconciles"]]

    @property
    def quarantined(self) -> int:
        """Rows and whole files this run sent to the quarantine."""
        totals = self.report.as_dict()
        return totals["rows_quarantined"] + totals["files_quarantined"]


def land_feed(
    settings: Settings, feed_name: str, *, load_id: str, as_of: str, run_id: str
) -> LandingStep:
    """Land the feed's new files under `settings.landing`, purge rows past its retention
    (feeds.yml `retention:`), and reconcile every file of the feed."""
    feeds = contracts.load(
        overrides=contracts.overrides_file(settings.landing, settings.feeds_overrides)
    )
    feed = feeds[feed_name]
    with settings.connect() as connection:
        loader = Loader(connection, settings.landing, feeds, salt=settings.salt)
        report = loader.land_feed(feed.name, load_id, progress=False)
        purged = None
        if feed.retention is not None:
            from ml.privacy.retention import purge_expired

            (purged,) = purge_expired(connection, [feed], as_of, run_id=run_id)
        examples = [
            message
            if row_number is None
            else f"{file} row {row_number}: {mask_reason(reason, feed)}"
            for file, row_number, reason, message in connection.execute(
                "select file, row_number, reason, message from landing.quarantine "
                "where load_id = ? and feed = ? order by file, row_number limit ?",
                [report.load_id, feed.name, QUARANTINE_EXAMPLES],
            ).fetchall()
        ]
        (rows_in_table,) = connection.execute(
            f"select count(*) from {quote_ident(feed.name)}.{quote_ident(feed.table)}"
        ).fetchone()
        archived, expired = [], []
        if settings.archive_days is not None:
            # archive mode: the files the ledger has accounted for leave the landing folder
            today = datetime.now(UTC).date()
            archived = archive_landed_files(
                connection, settings.landing, settings.landing_archive, feed, today
            )
            expired = expire_archive(settings.landing_archive, settings.archive_days, today)
        return LandingStep(
            feed=feed.name,
            report=report,
            purged=purged,
            reconciliation=reconciliation(connection, feed),
            quarantine_examples=examples,
            rows_in_table=rows_in_table,
            archived=archived,
            archive_days_removed=expired,
        )
