"""Plain SQL for the grader's hottest reads, turned back into model instances.

Django compiles a query anew on every request: for a ``select_related`` over five tables that
took 2-3 ms of Python, ten times what PostgreSQL took to answer. The result page, the leaderboard
and the staff's list each read a fixed shape of rows on every view, so their statements are built
once per process from the models' own metadata (table and column names, never input) and the rows
become model instances with each field's own converters (JSON decoded, SQLite's text dates
parsed), as the ORM would have made them. Everything else keeps the ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any, Generic, TypeVar

from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import DateTimeField, Field, Model
from django.utils import timezone

M = TypeVar("M", bound=Model)

Converter = Callable[[Any, Any, Any], Any]
Params = Sequence[Any] | Mapping[str, Any]  # for %s placeholders, or for %(name)s ones


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def table(model: type[Model]) -> str:
    return quote(model._meta.db_table)


class Columns(Generic[M]):
    """The columns of ``model`` read under a table alias: every concrete field, or ``only``
    those, or all but those ``without`` (the others are then deferred, loaded by the ORM if
    something reads them). Either way in the order of the model's fields, whatever the order of
    ``only``."""

    def __init__(
        self, model: type[M], alias: str, *, only: Sequence[str] = (), without: Sequence[str] = ()
    ) -> None:
        if only and without:
            raise ValueError("name the fields to read or those not to, not both")
        self.model = model
        self.alias = alias
        fields = [
            field
            for field in model._meta.concrete_fields
            if (not only or field.name in only) and field.name not in without
        ]
        if only and len(fields) != len(only):
            raise ValueError(f"{model.__name__} has no field among {only}")
        self.fields: list[Field[Any, Any]] = fields
        self.attnames = [field.attname for field in fields]
        self.names = [field.name for field in fields]
        pk = model._meta.pk.attname
        self._pk_index = self.attnames.index(pk) if pk in self.attnames else None

    def __len__(self) -> int:
        return len(self.fields)

    @cached_property
    def sql(self) -> str:
        return ", ".join(f"{self.alias}.{quote(str(field.column))}" for field in self.fields)

    @cached_property
    def _converters(self) -> list[tuple[int, list[Converter], Any]]:
        found = []
        for index, field in enumerate(self.fields):
            column = field.get_col(self.alias)
            converters = [
                *connection.ops.get_db_converters(column),
                *column.get_db_converters(connection),
            ]
            if converters:
                found.append((index, converters, column))
        return found

    def values(self, row: Sequence[Any], start: int = 0) -> list[Any]:
        """This model's values in ``row`` (from ``start``), converted as the ORM would."""
        values = list(row[start : start + len(self.fields)])
        for index, converters, column in self._converters:
            value = values[index]
            for converter in converters:
                value = converter(value, column, connection)
            values[index] = value
        return values

    def named(self, row: Sequence[Any], start: int = 0) -> dict[str, Any]:
        """This model's values in ``row`` (from ``start``) by field name, converted."""
        return dict(zip(self.names, self.values(row, start), strict=True))

    def instance(self, row: Sequence[Any], start: int = 0) -> M | None:
        """The instance in ``row`` from ``start``; ``None`` when its primary key is NULL (an
        outer join that found nothing)."""
        if self._pk_index is None:
            raise ValueError(f"{self.model.__name__}'s columns here lack its primary key")
        if row[start + self._pk_index] is None:
            return None
        return self.model.from_db(DEFAULT_DB_ALIAS, self.attnames, self.values(row, start))


def attach(instance: Model, field_name: str, related: Model | None) -> None:
    """Cache ``related`` as ``instance.<field_name>``, as ``select_related`` does."""
    instance._meta.get_field(field_name).set_cached_value(instance, related)  # type: ignore[union-attr]


@dataclass(frozen=True)
class Read:
    """A statement whose row holds, side by side, each of ``columns``' models."""

    statement: str
    columns: tuple[Columns[Any], ...]

    def row(self, params: Params) -> list[Any] | None:
        """Each model's instance (``None`` for an outer join that found nothing), in the order
        of ``columns``, then any values the statement selects after them, as they came; ``None``
        when there is no row."""
        with connection.cursor() as cursor:
            cursor.execute(self.statement, params)
            row = cursor.fetchone()
        return None if row is None else self._instances(row)

    def rows(self, params: Params) -> list[list[Any]]:
        """Every row, each as ``row`` gives it."""
        with connection.cursor() as cursor:
            cursor.execute(self.statement, params)
            return [self._instances(row) for row in cursor.fetchall()]

    def _instances(self, row: Sequence[Any]) -> list[Any]:
        instances, start = [], 0
        for columns in self.columns:
            instances.append(columns.instance(row, start))
            start += len(columns)
        instances.extend(row[start:])
        return instances


def insert(objs: Sequence[Model], *, return_pk: bool = False) -> None:
    """INSERT the unsaved ``objs``, all of one model, in one statement, as ``bulk_create`` does
    but with the statement built once per model and row count. Each field's ``pre_save`` (the
    ``auto_now`` timestamps) and ``get_db_prep_save`` (JSON, decimals, UUIDs) run as the ORM
    runs them; ``save()`` and signals do not, so only for models that override neither. With
    ``return_pk`` (a single object), the new primary key is set on it."""
    if not objs:
        return
    model = type(objs[0])
    if return_pk and len(objs) != 1:
        raise ValueError("return_pk is for one object")
    returning = return_pk and connection.features.can_return_columns_from_insert
    fields, statement = _insert_statement(model, len(objs), returning)
    params = [
        field.get_db_prep_save(field.pre_save(obj, True), connection)
        for obj in objs
        for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        if return_pk:
            objs[0].pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    for obj in objs:
        obj._state.adding = False
        obj._state.db = DEFAULT_DB_ALIAS


@lru_cache(maxsize=64)
def _insert_statement(
    model: type[Model], count: int, returning: bool
) -> tuple[list[Field[Any, Any]], str]:
    pk = model._meta.pk
    fields = [
        field for field in model._meta.concrete_fields if field is not pk or not pk.db_returning
    ]
    row = f"({', '.join(['%s'] * len(fields))})"
    statement = (
        f"INSERT INTO {table(model)} ({', '.join(quote(str(f.column)) for f in fields)})"  # noqa: S608 - names from the models
        f" VALUES {', '.join([row] * count)}"
    )
    if returning:
        statement += f" RETURNING {quote(str(pk.column))}"
    return fields, statement


# --- Timestamps as whole microseconds -----------------------------------------------------------
#
# The PostgreSQL backend reads each timestamp through a Python loader (it makes the value aware
# in the connection's time zone): about 11 µs each, against 2 µs for a bigint, which the driver
# reads in C. Fifty rows with a date each took 0.6 ms. Reads of many rows send them as integers.

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp_sql(column: str) -> str:
    """The SQL of the timestamp ``column`` (any expression) as ``timestamp_from_db`` reads it:
    whole microseconds since 1970 on PostgreSQL (exact), as it is elsewhere."""
    if connection.vendor == "postgresql":
        return f"(EXTRACT(EPOCH FROM {column}) * 1000000)::bigint"
    return column


def timestamp_from_db(value: Any) -> datetime | None:
    """What ``timestamp_sql`` read, as the ORM would give it: aware, in the connection's time
    zone (UTC unless the database settings name another)."""
    if value is None:
        return None
    if isinstance(value, int):
        moment = EPOCH + timedelta(microseconds=value)
    else:  # a datetime, or SQLite's text
        if not isinstance(value, datetime):
            value = datetime.fromisoformat(str(value))
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    zone = _connection_zone()
    if zone is UTC:
        return moment
    if zone is None:  # USE_TZ off: naive, in local time
        return timezone.make_naive(moment, timezone.get_default_timezone())
    return moment.astimezone(zone)


_zones: dict[str, Any] = {}


def _connection_zone() -> Any:
    # Read once: the connection is a proxy, and asking it costs more than the conversion.
    if "zone" not in _zones:
        zone = connection.timezone
        _zones["zone"] = UTC if zone == UTC else zone
    return _zones["zone"]


def _forget_zone(*, setting: str, **kwargs: Any) -> None:
    if setting in ("USE_TZ", "TIME_ZONE", "DATABASES"):
        _zones.clear()


setting_changed.connect(_forget_zone, dispatch_uid="topdown.sql.forget_zone")


def _timestamp_converter(value: Any, expression: Any, connection: Any) -> datetime | None:
    return timestamp_from_db(value)


class TimestampColumns(Columns[M]):
    """``Columns`` whose timestamps travel as whole microseconds (``timestamp_sql``): for reads
    of many rows, or of rows with many dates."""

    @cached_property
    def sql(self) -> str:
        parts = []
        for field in self.fields:
            column = f"{self.alias}.{quote(str(field.column))}"
            parts.append(timestamp_sql(column) if isinstance(field, DateTimeField) else column)
        return ", ".join(parts)

    @cached_property
    def _converters(self) -> list[tuple[int, list[Converter], Any]]:
        if connection.vendor != "postgresql":
            return super()._converters
        timestamps = {i for i, field in enumerate(self.fields) if isinstance(field, DateTimeField)}
        kept = [entry for entry in super()._converters if entry[0] not in timestamps]
        converters: list[Converter] = [_timestamp_converter]
        added: list[tuple[int, list[Converter], Any]] = [(i, converters, None) for i in timestamps]
        return sorted([*kept, *added], key=lambda entry: entry[0])


@contextmanager
def unprepared() -> Iterator[None]:
    """Statements run inside are planned for their own parameters every time, never kept
    prepared (``DATABASE_PREPARED_STATEMENTS``): for the few whose best plan depends on the
    values, such as a search window, where a generic plan for a rare word walks the whole table."""
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    saved = raw.prepare_threshold
    raw.prepare_threshold = None
    try:
        yield
    finally:
        raw.prepare_threshold = saved
