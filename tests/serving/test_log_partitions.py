"""The prediction log partitioned by UTC day on PostgreSQL (migration 0004, serving.partitions):
retention drops whole days past the limit and nothing inside it; readers count a row once
whichever partition holds it, the default one included, and read only the days they ask for."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from serving import logbook
from serving.drift import prediction_logs_prune
from serving.models import ApiClient, PredictionLog
from serving.partitions import day_start, partition_name, partitions_forget, prediction_log_days_ensure
from serving.selectors import served_images, serving_metrics
from tests.factories import ProjectFactory

pytestmark = pytest.mark.postgres
TABLE = "serving_predictionlog"
PARTITION = re.compile(rf"\b{TABLE}_(p\d{{8}}|default)\b")
BEFORE_PARTITIONS = ("serving", "0003_drift_per_client_and_target_routing")


@pytest.fixture(autouse=True)
def _partitions_forgotten():
    partitions_forget()
    yield
    partitions_forget()


@pytest.fixture
def camera(db):
    project = ProjectFactory(name="Partitioned")
    client = ApiClient.objects.create(name="gate", token_prefix="gate", token_sha256="e" * 64)
    client.projects.add(project)
    return project, client


def answers(project, client, *moments, kept_file: str = "") -> list[PredictionLog]:
    """One answered API request per moment, as the prediction API logs it."""
    fields = {"project": project, "client": client, "status": 200, "latency_ms": 12.0, "width": 640, "height": 480}
    fields |= {"brightness": 120.0, "contrast": 40.0, "kept_file": kept_file}
    return PredictionLog.objects.bulk_create([PredictionLog(created_at=moment, **fields) for moment in moments])


def partitions() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [TABLE],
        )
        return {row[0] for row in cursor.fetchall()}


def holders() -> dict[str, int]:
    """Partition name -> rows it holds."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text, count(*) FROM {TABLE} GROUP BY 1")
        return dict(cursor.fetchall())


def at(day: date, hour: int = 0, minute: int = 0, second: int = 0, microsecond: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, microsecond, tzinfo=UTC)


@pytest.mark.django_db
def test_the_migration_made_the_log_a_table_partitioned_by_day():
    today = timezone.now().astimezone(UTC).date()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relkind, p.partstrat, a.attname FROM pg_class c "
            "JOIN pg_partitioned_table p ON p.partrelid = c.oid"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0] WHERE c.oid = %s::regclass",
            [TABLE],
        )
        assert cursor.fetchone() == ("p", "r", "created_at")  # partitioned (p), by range (r) of created_at
        cursor.execute(
            "SELECT array_agg(a.attname ORDER BY a.attname) FROM pg_constraint k JOIN pg_attribute a "
            "ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey) WHERE k.conrelid = %s::regclass "
            "AND k.contype = 'p'",
            [TABLE],
        )
        assert cursor.fetchone()[0] == ["created_at", "id"]
    # the days the migration made (today and the next 7), and the default partition
    expected = {partition_name(today + timedelta(days=n)) for n in range(8)} | {f"{TABLE}_default"}
    assert expected <= partitions()
    # Django still sees one row by its id
    project = ProjectFactory()
    row = PredictionLog.objects.create(project=project, status=200, created_at=timezone.now())
    assert PredictionLog.objects.get(pk=row.pk).project == project


@pytest.mark.django_db
def test_retention_drops_exactly_the_days_past_the_limit_and_no_row_inside_it(camera, settings):
    project, client = camera
    settings.QUORUM_PREDICTION_LOG_DAYS = 3
    now = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)  # the limit: 2026-01-07 12:00 UTC
    days = [date(2026, 1, d) for d in (5, 6, 7, 8)]
    prediction_log_days_ensure(days)
    kept = {name: default_storage.save(f"kept/{name}.jpg", ContentFile(b"jpeg")) for name in "abcde"}
    gone = [
        *answers(project, client, at(days[0], 3), kept_file=kept["a"]),
        *answers(project, client, at(days[0], 23, 59, 59, 999_000), at(days[1], 0)),
        *answers(project, client, at(days[1], 23, 59, 59, 999_999)),  # the last instant of a wholly past day
        *answers(project, client, at(date(2026, 1, 3), 9), kept_file=kept["b"]),  # a day without a partition
    ]
    inside = [
        *answers(project, client, at(days[2], 0)),  # past the limit, but its day is not wholly past it
        *answers(project, client, at(days[2], 11, 59), kept_file=kept["c"]),
        *answers(project, client, at(days[2], 12, 1), at(days[3], 0)),
        *answers(project, client, at(days[3], 9), kept_file=kept["d"]),
        *answers(project, client, at(date(2026, 1, 9), 8), kept_file=kept["e"]),  # in the default partition
    ]
    assert holders()[f"{TABLE}_default"] == 2
    before = partitions()
    with connection.cursor() as cursor:  # as if committed: PostgreSQL drops no table with unchecked foreign keys
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    removed = prediction_logs_prune(now=now)

    assert removed == len(gone) == 5
    dropped = before - partitions()
    # every day partition that ended by 2026-01-07 00:00, and no other (the default stays)
    days_past = {name for name in before if re.fullmatch(rf"{TABLE}_p\d{{8}}", name) and name < partition_name(days[2])}
    assert dropped == days_past
    assert {partition_name(days[0]), partition_name(days[1])} <= dropped
    assert set(PredictionLog.objects.values_list("pk", flat=True)) == {row.pk for row in inside}
    assert not default_storage.exists(kept["a"]) and not default_storage.exists(kept["b"])
    assert all(default_storage.exists(kept[name]) for name in "cde")
    assert prediction_logs_prune(now=now) == 0  # nothing more past the limit


@pytest.mark.django_db
def test_a_window_across_midnight_counts_every_row_once(camera):
    project, client = camera
    today = timezone.now().astimezone(UTC).date()
    yesterday = today - timedelta(days=1)
    prediction_log_days_ensure([yesterday, today])
    answers(project, client, *[at(yesterday, 23, 59, 59, 999_000)] * 3)
    answers(project, client, *[at(today, 0)] * 4)
    assert holders() == {partition_name(yesterday): 3, partition_name(today): 4}

    metrics = serving_metrics(project=project, minutes=1440)
    assert metrics["total"]["requests"] == 7
    assert metrics["clients"]["gate"]["requests"] == 7
    assert sum(minute["requests"] for minute in metrics["series"]) == 7
    assert len(served_images(project, timezone.now() - timedelta(days=1))) == 7
    assert len(served_images(project, day_start(today))) == 4


@pytest.mark.django_db
def test_rows_of_a_day_without_its_partition_land_in_the_default_one_and_are_counted(camera):
    """A row whose day has no partition (beat late, a hand-made row) goes to the default
    partition, is counted, and moves to its day's partition once that is made."""
    project, client = camera
    today = timezone.now().astimezone(UTC).date()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{partition_name(today)}"')  # undone with the test's transaction
    now = timezone.now()
    answers(project, client, now - timedelta(seconds=1), now - timedelta(seconds=2))
    far = answers(project, client, at(today + timedelta(days=40), 6))
    assert holders() == {f"{TABLE}_default": 3}
    assert serving_metrics(project=project, minutes=60)["total"]["requests"] == 2

    assert prediction_log_days_ensure([today]) == [today]

    assert holders() == {partition_name(today): 2, f"{TABLE}_default": 1}
    assert serving_metrics(project=project, minutes=60)["total"]["requests"] == 2
    assert PredictionLog.objects.filter(pk=far[0].pk).exists()
    assert prediction_log_days_ensure([today]) == []  # there now


@pytest.mark.django_db
def test_the_log_writer_makes_the_day_of_the_rows_it_writes(camera, settings, log_written_here):
    project, client = camera
    settings.QUORUM_PREDICTION_LOG_DEFERRED = True
    day = date(2026, 2, 14)
    assert partition_name(day) not in partitions()
    for moment in (at(day, 1), at(day, 2)):
        logbook._rows.put((PredictionLog(project=project, client=client, status=200, created_at=moment), None))
    assert logbook.flush() == 2
    assert holders() == {partition_name(day): 2}


@pytest.mark.django_db
def test_the_monitoring_queries_of_a_day_read_only_that_days_partitions(camera):
    project, client = camera
    today = timezone.now().astimezone(UTC).date()
    days = [today - timedelta(days=n) for n in range(5)]
    prediction_log_days_ensure(days)
    answers(project, client, *[at(day, 12) for day in days[2:]], timezone.now() - timedelta(minutes=5))
    with CaptureQueriesContext(connection) as queries:
        assert serving_metrics(project=project, minutes=1440)["total"]["requests"] == 1
    reads = [query["sql"] for query in queries if f'"{TABLE}"' in query["sql"]]
    assert len(reads) == 2  # the window's rows; the refusals before a project was named
    for sql in reads:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert set(PARTITION.findall(plan)) <= {f"p{days[0]:%Y%m%d}", f"p{days[1]:%Y%m%d}"}, plan
        assert f"p{days[0]:%Y%m%d}" in PARTITION.findall(plan), plan


def _index_and_key_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass UNION "
            "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = %s::regclass",
            [TABLE, TABLE],
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_a_log_filled_before_the_partitions_keeps_every_row():
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE_PARTITIONS])
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [TABLE])
            assert cursor.fetchone()[0] == "r"
        names = _index_and_key_names()
        old = executor.loader.project_state([BEFORE_PARTITIONS]).apps.get_model("serving", "PredictionLog")
        moments = [
            datetime(2025, 3, 1, 23, 59, 59, 999_999, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC),
            datetime(2025, 3, 2, 13, tzinfo=UTC), datetime(2025, 4, 30, 8, tzinfo=UTC), timezone.now(),
        ]  # fmt: skip
        made = old.objects.bulk_create(
            [old(status=200 + n, latency_ms=n, kept_file=f"kept/{n}.jpg", created_at=m) for n, m in enumerate(moments)]
        )
        before = sorted(old.objects.values_list("pk", "status", "latency_ms", "kept_file", "created_at"))
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert sorted(PredictionLog.objects.values_list("pk", "status", "latency_ms", "kept_file", "created_at")) == before
    # every index and key kept its name (the primary key is now (id, created_at)); 0004 adds one index
    assert _index_and_key_names() == names | {"serving_log_kept_file"}
    spread = holders()
    for day in (date(2025, 3, 1), date(2025, 3, 2), date(2025, 4, 30)):
        assert partition_name(day) in spread
    assert spread[partition_name(date(2025, 3, 2))] == 2 and f"{TABLE}_default" not in spread
    # the ids go on from where they were
    row = PredictionLog.objects.create(status=200, created_at=timezone.now())
    assert row.pk > max(item.pk for item in made)
