"""Prediction log benchmark (PostgreSQL only): the log partitioned by UTC day (migration 0004,
serving/partitions.py) against a plain copy of the same table, the log as it was (one table,
primary key id, the same indexes and foreign keys), filled with the same rows in the same run.

--rows rows (default 10,000,000) are spread evenly from 00:00 UTC --days days ago (default
10) to now: one project, 5 API clients, 2 model versions, 2% refusals, 5% shadow runs, 1% of
rows naming a kept upload (absent from storage: its deletion is tried, as retention does).
Both tables are filled with SQL (INSERT ... SELECT FROM generate_series, then copied), their
secondary indexes and foreign keys made after the rows, then VACUUM ANALYZE; the time is
printed. Then each side in turn, with Django's model pointed at the side's table:

- monitoring: the monitoring page's reads, serving.selectors.serving_metrics over the last
  60 and the last 1440 minutes (the page's default and the API's widest window), seconds a
  call, on the rows as filled;
- insert: rows per second through the log writer's batch path (serving.logbook._write:
  200-row batches of rows of now; on the partitioned side, with the partition check),
  50 batches a measurement;
- retention of a day: serving.drift.prediction_logs_prune with its clock set so that the
  oldest day left is exactly past the limit: on the partitioned side it drops that day's
  partition, on the plain side it DELETEs the same rows (it checks that both remove as many);
  then VACUUM of what it left dead rows in (the plain table; the default partition), timed
  apart. A DELETE only marks its rows dead: their space and their entries in the table's 13
  indexes are reclaimed by the VACUUM that autovacuum runs later, which reads every index
  whole; a dropped partition leaves nothing to vacuum. The target counts both.

--repeats (default 3, at least 3) measurements a side, alternating; median and range; ratios
partitioned / plain. Targets: insert rate at least 0.8x, each monitoring read at most 1.25x
the plain table's time, a day's retention with its VACUUM at least 10x faster (the
retention alone is printed too). Exits 1 when one is missed.
"""

import argparse
import contextlib
import os
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse, urlunparse

from _setup import django_test_database

PLAIN = "bench_predictionlog_plain"
TARGETS = {"insert": 0.8, "monitoring": 1.25, "retention": 10.0}
BATCHES = 50


def spread(values: list[float], digits: int = 3) -> str:
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def own_database() -> None:
    """DATABASE_URL's server (or the local one), a database name of this run's own."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        url = "postgres://postgres@127.0.0.1:5432/postgres"
    os.environ["DATABASE_URL"] = urlunparse(urlparse(url)._replace(path=f"/quorum_bench_logs_{os.getpid()}"))


def _secondary(cursor, table: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """`table`'s indexes but the primary key's ((name, CREATE INDEX ...)) and foreign keys ((name, definition))."""
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary ORDER BY c.relname",
        [table],
    )
    indexes = [(name, definition.replace(" ON ONLY ", " ON ", 1)) for name, definition in cursor.fetchall()]
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f' "
        "ORDER BY conname",
        [table],
    )
    return indexes, cursor.fetchall()


def fill(*, rows: int, days: int, project_id: int, client_ids: list[int], model_ids: list[int]) -> float:
    """Both tables filled with the same `rows` rows; seconds taken."""
    from django.db import connection

    from serving.partitions import day_of, day_start, prediction_log_days_ensure

    table = "serving_predictionlog"
    now = datetime.now(UTC)
    first = day_of(now) - timedelta(days=days - 1)
    start = day_start(first)
    span = (now - timedelta(seconds=1) - start).total_seconds()
    prediction_log_days_ensure([first + timedelta(days=n) for n in range(days + 8)])
    started = time.perf_counter()
    with connection.cursor() as cursor:
        indexes, foreign_keys = _secondary(cursor, table)
        for name, _ in foreign_keys:
            cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        clients = "ARRAY[" + ",".join(map(str, client_ids)) + "]"
        models = "ARRAY[" + ",".join(map(str, model_ids)) + "]"
        cursor.execute(
            f"""
            INSERT INTO "{table}" (request_id, project_id, client_id, model_id, artifact_sha256, is_shadow, is_canary,
                status, error, latency_ms, width, height, brightness, contrast, boxes, mean_confidence,
                min_confidence, median_box_height, kept_file, created_at)
            SELECT gen_random_uuid(), %s, ({clients})[1 + g %% {len(client_ids)}],
                CASE WHEN g %% 50 = 0 THEN NULL ELSE ({models})[1 + g %% {len(model_ids)}] END, '', g %% 20 = 1,
                false, CASE WHEN g %% 50 = 0 THEN 429 ELSE 200 END,
                CASE WHEN g %% 50 = 0 THEN 'rate_limited' ELSE '' END, 4 + (g %% 97) * 0.37, 1280, 720,
                80 + g %% 90, 30 + g %% 25, g %% 7, 0.3 + (g %% 60) / 100.0, 0.25, 40 + g %% 200,
                CASE WHEN g %% 100 = 7 THEN 'kept/bench/' || g || '.jpg' ELSE '' END,
                %s::timestamptz + (g * %s::float8 / %s) * interval '1 second'
            FROM generate_series(0, %s) AS g
            """,
            [project_id, start, span, rows - 1, rows - 1],
        )
        cursor.execute(
            f'CREATE TABLE "{PLAIN}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)'
        )
        cursor.execute(f'INSERT INTO "{PLAIN}" SELECT * FROM "{table}"')
        cursor.execute(f'ALTER TABLE "{PLAIN}" ADD PRIMARY KEY (id)')
        for name, definition in indexes:
            cursor.execute(definition)
            plain = definition.replace(f"INDEX {name} ", f"INDEX bench_{name} ", 1)
            cursor.execute(re.sub(rf"\bON (public\.)?{table}\b", f"ON {PLAIN}", plain, count=1))
        for name, definition in foreign_keys:
            cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
            cursor.execute(f'ALTER TABLE "{PLAIN}" ADD CONSTRAINT "bench_{name}" {definition}')
        cursor.execute(f'VACUUM ANALYZE "{table}"')
        cursor.execute(f'VACUUM ANALYZE "{PLAIN}"')
    return time.perf_counter() - started


@contextlib.contextmanager
def log_table(name: str):
    """Django's PredictionLog reads and writes table `name` meanwhile (the project's code, either table)."""
    from serving.models import PredictionLog

    def point(table: str) -> None:
        PredictionLog._meta.db_table = table
        for field in PredictionLog._meta.concrete_fields:
            field.__dict__.pop("cached_col", None)  # a column reference names its table; made again on use

    original = PredictionLog._meta.db_table
    point(name)
    try:
        yield
    finally:
        point(original)


def insert_rate(*, project_id: int, client_ids: list[int], model_ids: list[int]) -> float:
    from django.utils import timezone

    from serving import logbook
    from serving.models import PredictionLog

    batches = [
        [
            (
                PredictionLog(
                    project_id=project_id, client_id=client_ids[n % len(client_ids)], model_id=model_ids[n % 2],
                    status=200, latency_ms=9.5, width=1280, height=720, brightness=120.0, contrast=41.0, boxes=3,
                    mean_confidence=0.61, min_confidence=0.31, median_box_height=88.0, created_at=timezone.now(),
                ),
                None,
            )
            for n in range(logbook.BATCH)
        ]
        for _ in range(BATCHES)
    ]  # fmt: skip
    started = time.perf_counter()
    for batch in batches:
        logbook._write(batch)
    return BATCHES * logbook.BATCH / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=10, help="Days the rows span, today's included (at least 5).")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    if options.rows < 1000 or options.repeats < 3 or options.days < options.repeats + 2:
        parser.error("--rows is at least 1000, --repeats at least 3, --days at least repeats + 2 (days to drop, today)")
    own_database()
    with django_test_database():
        from django.conf import settings
        from django.db import connection

        from serving.drift import prediction_logs_prune
        from serving.models import ApiClient
        from serving.partitions import day_of, day_start
        from serving.selectors import serving_metrics
        from tests.training.conftest import make_model, trainable_project

        if connection.vendor != "postgresql":
            print("prediction_logs needs PostgreSQL: set DATABASE_URL=postgres://...")
            return 1
        trainable = trainable_project(images=8, name="Logs")
        project = trainable.project
        models = [make_model(trainable, ap50=0.5).pk, make_model(trainable, ap50=0.6).pk]
        clients = []
        for n in range(5):
            client = ApiClient.objects.create(name=f"camera {n}", token_prefix=f"c{n}", token_sha256=f"{n:064x}")
            client.projects.add(project)
            clients.append(client.pk)
        ids = {"project_id": project.pk, "client_ids": clients, "model_ids": models}
        seconds = fill(rows=options.rows, days=options.days, **ids)
        print(
            f"prediction log: {options.rows:,} rows over {options.days} UTC days (today's to now) in each table; "
            f"filled both in {seconds:.1f} s; PostgreSQL {connection.pg_version // 10000}"
        )
        sides = {"partitioned": "serving_predictionlog", "plain": PLAIN}
        results: dict[str, dict[str, list[float]]] = {side: {} for side in sides}

        def measure(name: str, work) -> None:
            for _ in range(options.repeats):
                for side, table in sides.items():
                    with log_table(table):
                        results[side].setdefault(name, []).append(work())

        def timed(minutes: int):
            def once() -> float:
                started = time.perf_counter()
                serving_metrics(project=project, minutes=minutes)
                return time.perf_counter() - started

            return once

        measure("monitoring 60 min", timed(60))
        measure("monitoring 1440 min", timed(1440))
        measure("insert", lambda: insert_rate(**ids))  # after the reads: they read the rows as filled

        first = day_of(datetime.now(UTC)) - timedelta(days=options.days - 1)
        removed: dict[str, list[int]] = {side: [] for side in sides}
        # the partitioned side's retention deletes rows only from the default partition (none here)
        vacuumed = {"partitioned": "serving_predictionlog_default", "plain": PLAIN}
        for turn in range(options.repeats):
            # the clock at which day `first + turn` is wholly past the limit, and nothing newer
            now = day_start(first + timedelta(days=turn + 1)) + timedelta(days=settings.QUORUM_PREDICTION_LOG_DAYS)
            for side, table in sides.items():
                with log_table(table):
                    started = time.perf_counter()
                    removed[side].append(prediction_logs_prune(now=now))
                    results[side].setdefault("retention", []).append(time.perf_counter() - started)
                started = time.perf_counter()
                with connection.cursor() as cursor:  # what the retention left dead rows in
                    cursor.execute(f'VACUUM "{vacuumed[side]}"')
                results[side].setdefault("vacuum", []).append(time.perf_counter() - started)
        if removed["partitioned"] != removed["plain"] or not all(removed["plain"]):
            print(f"MISSED: retention removed {removed['partitioned']} rows partitioned, {removed['plain']} plain")
            return 1

    missed = []
    print(f"  insert through the log writer (rows/s; {BATCHES} batches of 200):")
    rates = [p / q for p, q in zip(results["partitioned"]["insert"], results["plain"]["insert"], strict=True)]
    print(f"    partitioned {spread(results['partitioned']['insert'], 0)}, plain {spread(results['plain']['insert'], 0)}; "
          f"ratio {spread(rates, 2)} (target >= {TARGETS['insert']})")  # fmt: skip
    if statistics.median(rates) < TARGETS["insert"]:
        missed.append("insert")
    for name in ("monitoring 60 min", "monitoring 1440 min"):
        ratios = [p / q for p, q in zip(results["partitioned"][name], results["plain"][name], strict=True)]
        print(f"  {name} (serving_metrics, s): partitioned {spread(results['partitioned'][name])}, "
              f"plain {spread(results['plain'][name])}; time ratio {spread(ratios, 2)} "
              f"(target <= {TARGETS['monitoring']})")  # fmt: skip
        if statistics.median(ratios) > TARGETS["monitoring"]:
            missed.append(name)
    partitioned, plain = results["partitioned"], results["plain"]
    alone = [q / p for p, q in zip(partitioned["retention"], plain["retention"], strict=True)]
    totals = {side: [r + v for r, v in zip(results[side]["retention"], results[side]["vacuum"], strict=True)]
              for side in sides}  # fmt: skip
    speedups = [q / p for p, q in zip(totals["partitioned"], totals["plain"], strict=True)]
    print(f"  retention of a day ({spread([float(n) for n in removed['plain']], 0)} rows; s): "
          f"drop partition {spread(partitioned['retention'])}, DELETE {spread(plain['retention'])}; "
          f"DELETE / drop {spread(alone, 1)}")  # fmt: skip
    print(f"    then VACUUM: partitioned {spread(partitioned['vacuum'])}, plain {spread(plain['vacuum'])}; "
          f"with it: drop {spread(totals['partitioned'])}, DELETE {spread(totals['plain'])}; "
          f"DELETE / drop {spread(speedups, 1)} (target >= {TARGETS['retention']})")  # fmt: skip
    if statistics.median(speedups) < TARGETS["retention"]:
        missed.append("retention")
    if missed:
        print(f"MISSED: {', '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
