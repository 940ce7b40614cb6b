"""Table specs: columns, types and the registry every table (built-in or plugin) joins.

A table is data plus one generator. The spec says what a query may push down
(``index`` / ``required`` / ``additional`` columns) and the generator reads
those hints from a :class:`QueryContext`; it never sees APSW.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# osquery's column types; SQLite maps them to INTEGER, REAL and TEXT affinity.
TEXT = "TEXT"
INTEGER = "INTEGER"
BIGINT = "BIGINT"
UNSIGNED_BIGINT = "UNSIGNED BIGINT"
DOUBLE = "DOUBLE"
BLOB = "BLOB"
# osquery's DATETIME: we give unix seconds as integers; the declared type gives the
# column NUMERIC affinity, so `not_valid_after < strftime('%s', 'now')` compares numbers.
DATETIME = "DATETIME"

# No declared type: no affinity, values stay as given (a record's field as JSON gave it).
UNTYPED = ""

INTEGER_TYPES = frozenset({INTEGER, BIGINT, UNSIGNED_BIGINT, DATETIME})
TYPES = frozenset({TEXT, INTEGER, BIGINT, UNSIGNED_BIGINT, DOUBLE, BLOB, DATETIME, UNTYPED})

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Column:
    """One column of a table.

    ``index``: ``=`` and ``IN`` on it are pushed down to the generator.
    ``required``: a query must constrain one of the table's required columns.
    ``hidden``: not part of ``SELECT *`` (SQLite HIDDEN), still selectable.
    ``additional``: an input-only constraint (pushed down like ``index``).
    ``range``: ``<``, ``<=``, ``>``, ``>=`` on it are pushed down too, besides ``=``
    (an event table's ``eid`` and ``time``, so reading new rows costs O(new)).
    """

    name: str
    type: str
    description: str = ""
    index: bool = False
    required: bool = False
    hidden: bool = False
    additional: bool = False
    range: bool = False

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")

    @property
    def pushdown(self) -> bool:
        return self.index or self.required or self.additional or self.range


@dataclass(frozen=True)
class Constraint:
    """One pushed-down condition: ``op`` is one of = like > >= < <=."""

    column: str
    op: str
    value: Any


class QueryContext:
    """What a generator may know about the query that runs it."""

    def __init__(
        self,
        table: Table,
        constraints: Iterable[Constraint] = (),
        used: frozenset[str] | None = None,
        session: Any = None,
    ) -> None:
        self.table = table
        self.constraints = tuple(constraints)
        self._used = used
        # The connection's runtime state (event rings, stream floors); None outside a connection.
        self.session = session

    def eq(self, column: str) -> list[Any] | None:
        """Values of pushed-down ``=`` / ``IN`` on ``column``, or None when unconstrained.

        Several ``=`` on one column intersect (``pid = 1 AND pid = 2`` is empty).
        """
        result: list[Any] | None = None
        for c in self.constraints:
            if c.column != column or c.op != "=":
                continue
            values = list(dict.fromkeys(c.value)) if isinstance(c.value, (set, frozenset, list, tuple)) else [c.value]
            result = values if result is None else [v for v in result if v in values]
        return result

    def like(self, column: str) -> list[str]:
        """Patterns of pushed-down ``LIKE`` on ``column`` (osquery's path globbing)."""
        return [c.value for c in self.constraints if c.column == column and c.op == "like" and isinstance(c.value, str)]

    def ops(self, column: str) -> list[Constraint]:
        """Every pushed-down constraint on ``column`` (range operators included)."""
        return [c for c in self.constraints if c.column == column]

    def used(self, column: str) -> bool:
        """Whether the query reads ``column``; generators skip costly work for unread columns."""
        return self._used is None or column in self._used


Generator = Callable[[QueryContext], Iterable[Row | tuple]]


@dataclass(frozen=True, eq=False)
class Table:
    """A table spec plus the function that produces its rows."""

    name: str
    description: str
    columns: tuple[Column, ...]
    generate: Generator
    examples: tuple[str, ...] = ()
    cost: float = 1000.0  # rough rows to scan unconstrained; guides SQLite's join order
    module: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: duplicate column names")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def create_sql(self) -> str:
        cols = ", ".join(f'"{c.name}" {c.type}{" HIDDEN" if c.hidden else ""}' for c in self.columns)
        return f'CREATE TABLE "{self.name}" ({cols})'

    def rows(self, ctx: QueryContext | None = None) -> Iterator[Row | tuple]:
        yield from self.generate(ctx or QueryContext(self))


# Every table, built-in or third-party, lands here through `table()` / `register()`.
REGISTRY: dict[str, Table] = {}


def register(spec: Table) -> Table:
    existing = REGISTRY.get(spec.name)
    if existing is not None and existing.generate is not spec.generate:
        raise ValueError(f"table {spec.name} is registered twice ({existing.module} and {spec.module})")
    REGISTRY[spec.name] = spec
    return spec


def table(
    name: str,
    description: str,
    columns: Iterable[Column],
    *,
    examples: Iterable[str] = (),
    cost: float = 1000.0,
) -> Callable[[Generator], Generator]:
    """Declare and register a table whose rows the decorated generator yields.

    >>> @table("greetings", "Friendly words.", [Column("word", TEXT, "A word.")])
    ... def gen_greetings(ctx):
    ...     yield {"word": "hello"}
    """

    def decorate(fn: Generator) -> Generator:
        register(
            Table(
                name=name,
                description=description,
                columns=tuple(columns),
                generate=fn,
                examples=tuple(examples),
                cost=cost,
                module=getattr(fn, "__module__", ""),
            )
        )
        return fn

    return decorate
