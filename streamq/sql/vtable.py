"""The one adapter between APSW's virtual-table protocol and table specs.

BestIndexObject turns SQLite's constraints into a plan (which constraints
become Filter arguments, which columns are read); Filter turns that plan and
the arguments into a :class:`QueryContext` and runs the generator.
"""

from __future__ import annotations

import json
from typing import Any

import apsw

from ..errors import QueryError
from .schema import INTEGER_TYPES, Constraint, QueryContext, Table

# SQLite operator code -> our name; only these are ever pushed down.
_OPS = {
    apsw.SQLITE_INDEX_CONSTRAINT_EQ: "=",
    apsw.SQLITE_INDEX_CONSTRAINT_LIKE: "like",
    apsw.SQLITE_INDEX_CONSTRAINT_GT: ">",
    apsw.SQLITE_INDEX_CONSTRAINT_GE: ">=",
    apsw.SQLITE_INDEX_CONSTRAINT_LT: "<",
    apsw.SQLITE_INDEX_CONSTRAINT_LE: "<=",
}
# Tables without an index column cost their spec's estimate; a pushed-down `=` makes them cheap.
_INDEXED_COST = 10.0
_MISSING_REQUIRED_COST = 1e18


class TableModule:
    """APSW VTModule for one eponymous-only table."""

    def __init__(self, spec: Table, session: Any = None) -> None:
        self.spec = spec
        self.session = session

    def Connect(self, connection, modulename, databasename, tablename, *args):
        return self.spec.create_sql(), VirtualTable(self.spec, self.session)

    Create = Connect


class VirtualTable:
    def __init__(self, spec: Table, session: Any = None) -> None:
        self.spec = spec
        self.session = session
        self.names = spec.column_names
        self.integer_columns = frozenset(i for i, c in enumerate(spec.columns) if c.type in INTEGER_TYPES)
        self.pushable = {i: c for i, c in enumerate(spec.columns) if c.pushdown}
        self.range_columns = frozenset(i for i, c in enumerate(spec.columns) if c.range)
        self.required = frozenset(i for i, c in enumerate(spec.columns) if c.required)

    def BestIndexObject(self, info: apsw.IndexInfo) -> bool:
        plan: list[list[Any]] = []
        constrained: set[int] = set()
        for i in range(info.nConstraint):
            if not info.get_aConstraint_usable(i):
                continue
            col = info.get_aConstraint_iColumn(i)
            op = _OPS.get(info.get_aConstraint_op(i))
            if col not in self.pushable or op is None:
                continue
            if op in (">", ">=", "<", "<=") and col not in self.range_columns:
                continue
            if op == "like" and self.spec.columns[col].type != "TEXT":
                continue
            # IN lists stay one value per Filter call (SQLite's default): asking for them all at
            # once makes APSW fail with no message on an empty list (`IN (SELECT ... WHERE 0)`),
            # and one at a time SQLite also drops NULLs and duplicates before we see them.
            plan.append([col, op])
            info.set_aConstraintUsage_argvIndex(i, len(plan))
            if op in ("=", "like"):
                constrained.add(col)
        used = info.colUsed
        missing = bool(self.required) and not (constrained & self.required)
        if missing:
            info.estimatedCost = _MISSING_REQUIRED_COST
        elif constrained & set(self.pushable):
            info.estimatedCost = _INDEXED_COST
            info.estimatedRows = 10
        else:
            info.estimatedCost = self.spec.cost
            info.estimatedRows = max(1, int(self.spec.cost))
        # The table's name rides along so a plan (EXPLAIN QUERY PLAN) says which table lacks its constraint.
        info.idxStr = json.dumps(
            {"t": self.spec.name, "p": plan, "u": sorted(used) if used is not None else None, "m": missing}
        )
        return True

    def Open(self) -> Cursor:
        return Cursor(self)

    def Disconnect(self) -> None:
        pass

    Destroy = Disconnect


class Cursor:
    def __init__(self, vtable: VirtualTable) -> None:
        self.vtable = vtable
        self.rows: Any = iter(())
        self.current: tuple | None = None
        self.rowid = 0

    def Filter(self, indexnum: int, indexname: str, constraintargs: tuple) -> None:
        vt = self.vtable
        spec = vt.spec
        plan = json.loads(indexname) if indexname else {"p": [], "u": None, "m": bool(vt.required)}
        if plan["m"]:
            cols = " or ".join(spec.required)
            raise QueryError(
                f"table {spec.name} needs a constraint on {cols} (for example WHERE {spec.required[0]} = '...')"
            )
        constraints = []
        for (col, op), value in zip(plan["p"], constraintargs):
            name = vt.names[col]
            if op == "=":
                value = self._coerce(col, value)
            constraints.append(Constraint(name, op, value))
        used = None
        if plan["u"] is not None:
            # colUsed reports columns >= 63 together as 63 (SQLite's bitmask limit).
            used = frozenset(vt.names[i] for i in plan["u"] if i < len(vt.names))
            if 63 in plan["u"]:
                used |= frozenset(vt.names[63:])
        ctx = QueryContext(spec, constraints, used, vt.session)
        self.names = vt.names
        self.rows = iter(spec.generate(ctx))
        self.rowid = 0
        self._advance()

    def _coerce(self, col: int, value: Any) -> Any:
        # `pid = '42'` should find pid 42, as SQLite's affinity rules would for a real table.
        if col in self.vtable.integer_columns and isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                return value
        return value

    def _advance(self) -> None:
        try:
            row = next(self.rows)
        except StopIteration:
            self.current = None
            return
        if isinstance(row, tuple):
            self.current = row
        else:
            get = row.get
            self.current = tuple([get(n) for n in self.names])
        self.rowid += 1

    def Eof(self) -> bool:
        return self.current is None

    def Column(self, number: int) -> Any:
        if number < 0:
            return self.rowid
        return self.current[number]

    def Rowid(self) -> int:
        return self.rowid

    def Next(self) -> None:
        self._advance()

    def Close(self) -> None:
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()  # run the generator's finally blocks (open files, sockets) now
