"""On PostgreSQL the prediction log becomes a table partitioned by range of `created_at`, one
partition per UTC day (serving/partitions.py keeps them) and a DEFAULT partition for rows of
any other day. It keeps its name, columns, check constraints, indexes (by name), foreign keys
and rows; ids keep coming from one sequence, from where they were. The primary key is
(id, created_at) in the database, as PostgreSQL wants every unique key of a partitioned table
to hold the partition key; Django's state keeps `id` as the key, unique since one sequence
hands them all out. Reversible. On SQLite nothing changes. First, a partial index of the
rows that kept an upload (`kept_file`), on every database: retention reads it for the files
to delete."""

from datetime import UTC, datetime, timedelta

from django.db import migrations, models

TABLE = "serving_predictionlog"
SEQUENCE = f"{TABLE}_id_seq"
DAYS_AHEAD = 7  # serving.partitions.DAYS_AHEAD when this was written


def _is_partitioned(cursor) -> bool:
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [TABLE])
    return cursor.fetchone()[0] == "p"


def _definitions(cursor) -> tuple[list[str], list[tuple[str, str]]]:
    """The table's index definitions but the primary key's (CREATE INDEX statements), and its
    foreign keys (name, definition)."""
    cursor.execute(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass AND NOT indisprimary "
        "ORDER BY indexrelid",
        [TABLE],
    )
    # a partitioned table's own index reads "ON ONLY table"; on a table to be made, "ON table" makes it whole
    indexes = [row[0].replace(" ON ONLY ", " ON ", 1) for row in cursor.fetchall()]
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f' "
        "ORDER BY conname",
        [TABLE],
    )
    return indexes, cursor.fetchall()


def _sequence_position(cursor) -> tuple[int, bool]:
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
    cursor.execute(f"SELECT last_value, is_called FROM {cursor.fetchone()[0]}")
    return cursor.fetchone()


def _keys_and_indexes(cursor, primary_key: str, indexes: list[str], foreign_keys: list[tuple[str, str]]) -> None:
    cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{TABLE}_pkey" PRIMARY KEY ({primary_key})')
    for definition in indexes:
        cursor.execute(definition)
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{name}" {definition}')


def partition_by_day(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if _is_partitioned(cursor):
            return
        cursor.execute(f'LOCK TABLE "{TABLE}" IN ACCESS EXCLUSIVE MODE')
        indexes, foreign_keys = _definitions(cursor)
        last_value, is_called = _sequence_position(cursor)
        cursor.execute(f"""SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM "{TABLE}" """)
        today = datetime.now(UTC).date()
        days = {row[0] for row in cursor.fetchall()} | {today + timedelta(days=n) for n in range(DAYS_AHEAD + 1)}
        new = f"{TABLE}_partitioned"
        cursor.execute(
            f'CREATE TABLE "{new}" (LIKE "{TABLE}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE '
            "INCLUDING COMMENTS) PARTITION BY RANGE (created_at)"
        )
        for day in sorted(days):
            start, end = day.isoformat(), (day + timedelta(days=1)).isoformat()
            cursor.execute(
                f'CREATE TABLE "{TABLE}_p{day:%Y%m%d}" PARTITION OF "{new}" '
                f"FOR VALUES FROM ('{start} 00:00:00+00') TO ('{end} 00:00:00+00')"
            )
        cursor.execute(f'CREATE TABLE "{TABLE}_default" PARTITION OF "{new}" DEFAULT')
        cursor.execute(f'INSERT INTO "{new}" SELECT * FROM "{TABLE}"')
        cursor.execute(f'DROP TABLE "{TABLE}"')  # and its identity sequence, its indexes: their names are free
        cursor.execute(f'ALTER TABLE "{new}" RENAME TO "{TABLE}"')
        cursor.execute(f'CREATE SEQUENCE "{SEQUENCE}" AS bigint OWNED BY "{TABLE}".id')
        cursor.execute("SELECT setval(%s, %s, %s)", [SEQUENCE, last_value, is_called])
        cursor.execute(f"""ALTER TABLE "{TABLE}" ALTER COLUMN id SET DEFAULT nextval('"{SEQUENCE}"')""")
        _keys_and_indexes(cursor, "id, created_at", indexes, foreign_keys)


def unpartition(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if not _is_partitioned(cursor):
            return
        cursor.execute(f'LOCK TABLE "{TABLE}" IN ACCESS EXCLUSIVE MODE')
        indexes, foreign_keys = _definitions(cursor)
        last_value, is_called = _sequence_position(cursor)
        plain = f"{TABLE}_plain"
        cursor.execute(
            f'CREATE TABLE "{plain}" (LIKE "{TABLE}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE '
            "INCLUDING COMMENTS)"
        )
        cursor.execute(f'ALTER TABLE "{plain}" ALTER COLUMN id DROP DEFAULT')
        cursor.execute(f'ALTER TABLE "{plain}" ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY')
        cursor.execute(f'INSERT INTO "{plain}" SELECT * FROM "{TABLE}"')
        cursor.execute(f'DROP TABLE "{TABLE}"')  # with its partitions and its sequence
        cursor.execute(f'ALTER TABLE "{plain}" RENAME TO "{TABLE}"')
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
        cursor.execute(f'ALTER SEQUENCE {cursor.fetchone()[0]} RENAME TO "{SEQUENCE}"')
        cursor.execute("SELECT setval(%s, %s, %s)", [SEQUENCE, last_value, is_called])
        _keys_and_indexes(cursor, "id", indexes, foreign_keys)


class Migration(migrations.Migration):
    dependencies = [("serving", "0003_drift_per_client_and_target_routing")]

    operations = [
        # the rows that kept an upload, indexed (partially) before the move, which keeps every index
        migrations.AddIndex(
            model_name="predictionlog",
            index=models.Index(fields=["kept_file"], condition=~models.Q(kept_file=""), name="serving_log_kept_file"),
        ),
        migrations.RunPython(partition_by_day, unpartition, elidable=False),
    ]
