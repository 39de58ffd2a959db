"""The prediction log's day partitions on PostgreSQL.

Migration 0004 partitions `serving_predictionlog` by range of `created_at`: one partition per
UTC day, named `serving_predictionlog_p20261205` (the day it holds), and a DEFAULT partition,
`serving_predictionlog_default`, that takes a row whose day has no partition yet, so that an
insert never fails. Beat makes today's and the next DAYS_AHEAD days' partitions; the log
writer makes the day of a row it is about to write when it has none (a row moved out of the
default partition into its day's new partition on the way); retention drops whole days.
On SQLite, or where the table is not partitioned, every function here does nothing.
"""

import logging
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections, transaction

from serving.models import PredictionLog

logger = logging.getLogger(__name__)
DAYS_AHEAD = 7
LOCK_KEY = 0x514C_4F47  # pg_advisory_xact_lock: one process at a time makes partitions
LOCK_NOT_AVAILABLE = "55P03"  # the SQLSTATE of a lock_timeout
LOCK_TIMEOUT = "5s"  # making or dropping a partition locks the whole table; a long reader must not stall writers
PLAIN_RECHECK_SECONDS = 60.0  # a table found unpartitioned is looked at again after this (a migration may run)
_known: set[tuple[str, str, date]] = set()  # (database alias, table, day): its partition exists (committed)
_plain_until: dict[tuple[str, str], float] = {}  # (database alias, table) found unpartitioned, until then


def day_of(moment: datetime) -> date:
    """The UTC day of an aware `moment`: the partition it belongs to."""
    return moment.astimezone(UTC).date()


def day_start(day: date) -> datetime:
    """00:00 UTC of `day`: its partition's lower bound (inclusive); the next day's is its upper bound."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def partition_name(day: date, *, table: str | None = None) -> str:
    return f"{table or PredictionLog._meta.db_table}_p{day:%Y%m%d}"


def partitions_forget() -> None:
    """Forget which partitions this process has seen (tests; a partition dropped by hand)."""
    _known.clear()
    _plain_until.clear()


def prediction_log_days_ensure(days: Iterable[date] | None = None, *, using: str = DEFAULT_DB_ALIAS) -> list[date]:
    """Make sure each of `days` (default: today and the next DAYS_AHEAD, UTC) has its partition,
    moving the rows of a new day that the default partition holds into it. The days this
    process has seen exist, outside any transaction of the caller's (so committed), are
    not looked up again, so the writer asks the database once a day, not once a batch
    (inside a caller's transaction it asks every time: a rollback would take the days
    away). The days made."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return []
    table = PredictionLog._meta.db_table
    if days is None:
        today = day_of(datetime.now(UTC))
        days = [today + timedelta(days=ahead) for ahead in range(DAYS_AHEAD + 1)]
    wanted = sorted({day for day in days if (using, table, day) not in _known})
    if not wanted or _plain_until.get((using, table), 0.0) > time.monotonic():
        return []
    made = []
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=using), connection.cursor() as cursor:
        existing = _partitions(cursor, table)
        if existing is None:
            _plain_until[(using, table)] = time.monotonic() + PLAIN_RECHECK_SECONDS
            return []
        if any(partition_name(day, table=table) not in existing for day in wanted):
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])
            existing = _partitions(cursor, table)  # another process may have made some meanwhile
            for day in wanted:
                if partition_name(day, table=table) not in existing:
                    _partition_create(cursor, table, day)
                    made.append(day)
    if outermost:  # committed: the days exist for every process from now on
        _known.update((using, table, day) for day in wanted)
    if made:
        logger.info("prediction log partitions made for %s", ", ".join(map(str, made)))
    return made


def prediction_log_days_drop(*, before: date, using: str = DEFAULT_DB_ALIAS) -> int | None:
    """Drop the partition of every day before `before` (each wholly before 00:00 UTC of it),
    after deleting from storage the uploads its rows kept. The rows removed; None when the
    table is not partitioned (nothing done: the caller deletes rows instead). A drop waits
    at most LOCK_TIMEOUT for readers; one that times out is left for the next run."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    table = PredictionLog._meta.db_table
    with connection.cursor() as cursor:
        existing = _partitions(cursor, table)
    if existing is None:
        return None
    removed = 0
    for name in sorted(existing):
        day = _day_of_name(name, table=table)
        if day is None or day >= before:
            continue
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT count(*) FROM "{name}"')  # an index-only scan where the day is vacuumed
            rows = cursor.fetchone()[0]
            # the condition of the partial index serving_log_kept_file, as written there, so that it is used
            cursor.execute(f"""SELECT kept_file FROM "{name}" WHERE NOT (kept_file = '')""")
            kept = [row[0] for row in cursor.fetchall()]
        # files first: a drop that fails leaves rows whose files are gone, never files that no row names
        for file_name in kept:
            default_storage.delete(file_name)
        try:
            with transaction.atomic(using=using), connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])
                cursor.execute(f'DROP TABLE "{name}"')
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            logger.warning("prediction log partition %s not dropped: the table was busy; next run", name)
            continue
        _known.discard((using, table, day))
        removed += rows
        logger.info("prediction log partition %s dropped (%s rows)", name, rows)
    return removed


def _partitions(cursor, table: str) -> set[str] | None:
    """The names of `table`'s partitions; None when it is not a partitioned table."""
    cursor.execute(
        """
        SELECT parent.relkind, array(
            SELECT child.relname::text FROM pg_inherits link JOIN pg_class child ON child.oid = link.inhrelid
            WHERE link.inhparent = parent.oid
        )
        FROM pg_class parent WHERE parent.oid = to_regclass(%s)
        """,
        [table],
    )
    row = cursor.fetchone()
    if row is None or row[0] != "p":
        return None
    return set(row[1])


def _day_of_name(name: str, *, table: str) -> date | None:
    prefix = f"{table}_p"
    if not name.startswith(prefix):
        return None
    try:
        return datetime.strptime(name[len(prefix) :], "%Y%m%d").date()
    except ValueError:
        return None


def _partition_create(cursor, table: str, day: date) -> None:
    """The partition of `day`; rows of that day that the default partition took are moved into it
    (PostgreSQL refuses a new partition while the default holds rows of its range)."""
    name, default = partition_name(day, table=table), f"{table}_default"
    start, end = day_start(day).isoformat(), day_start(day + timedelta(days=1)).isoformat()
    cursor.execute(
        f'SELECT EXISTS (SELECT 1 FROM "{default}" WHERE created_at >= %s AND created_at < %s)', [start, end]
    )
    strays = cursor.fetchone()[0]
    if strays:
        cursor.execute(f'CREATE TEMPORARY TABLE quorum_log_strays (LIKE "{table}")')
        cursor.execute(
            f'WITH moved AS (DELETE FROM "{default}" WHERE created_at >= %s AND created_at < %s RETURNING *) '
            "INSERT INTO quorum_log_strays SELECT * FROM moved",
            [start, end],
        )
    # bounds written out: DDL takes no parameters (they are isoformat()s of dates, nothing from outside)
    cursor.execute(f"""CREATE TABLE "{name}" PARTITION OF "{table}" FOR VALUES FROM ('{start}') TO ('{end}')""")
    if strays:
        cursor.execute(f'INSERT INTO "{table}" SELECT * FROM quorum_log_strays')
        cursor.execute("DROP TABLE quorum_log_strays")
