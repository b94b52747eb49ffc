"""Django's model backend, with the user of each request loaded by a statement compiled once.

Every page behind a login loads its user from the session's id. Through the ORM that lookup
compiles the same ``SELECT`` afresh each time, which costs about three times what running it
does (0.67 ms against 0.20 ms of CPU on the benchmark machine, measured in
``benchmarks/RESULTS.md``). Here the ORM compiles it once per database (columns, placeholder and
the backend's value converters, so SQLite's text dates still become datetimes) and each request
only runs it. The user it returns is the model instance the ORM would have built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, connections, router
from django.dispatch import receiver

from accounts.models import User

Converters = dict[int, tuple[list[Callable[..., Any]], Any]]


@dataclass(frozen=True)
class _Statement:
    sql: str
    attnames: list[str]
    converters: Converters


_statements: dict[str, _Statement] = {}


def _statement(alias: str) -> _Statement:
    statement = _statements.get(alias)
    if statement is None:
        model = get_user_model()
        compiler = model._default_manager.using(alias).filter(pk=0).query.get_compiler(alias)
        sql, params = compiler.as_sql()
        if len(params) != 1:  # the primary key's placeholder and nothing else
            raise RuntimeError(f"unexpected parameters in the user lookup: {params!r}")
        columns = [expression for expression, _sql, _alias in compiler.select]
        statement = _Statement(
            sql=sql,
            attnames=[column.target.attname for column in columns],
            converters=compiler.get_converters(columns),
        )
        _statements[alias] = statement
    return statement


@receiver(setting_changed)
def _forget_statements(*, setting: str, **kwargs: object) -> None:
    if setting in {"AUTH_USER_MODEL", "DATABASES"}:
        _statements.clear()


def user_by_id(user_id: Any) -> User | None:
    """The user with this primary key, or None: ``User.objects.get(pk=...)`` at a third the cost."""
    model = get_user_model()
    alias = router.db_for_read(model) or DEFAULT_DB_ALIAS
    statement = _statement(alias)
    connection = connections[alias]
    parameter = model._meta.pk.get_db_prep_value(user_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, [parameter])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for position, (converters, expression) in statement.converters.items():
        value = values[position]
        for converter in converters:
            value = converter(value, expression, connection)
        values[position] = value
    return cast(User, model.from_db(alias, statement.attnames, values))


class ModelBackend(DjangoModelBackend):
    def get_user(self, user_id: Any) -> User | None:
        user = user_by_id(user_id)
        if user is None or not self.user_can_authenticate(user):
            return None
        return user
