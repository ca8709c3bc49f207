"""`Statement`: a Core statement compiled once per dialect (and per set of parameter
names) with its types' bind and result processing, to be sent by `Direct`.

Only for statements whose every value is given: a column default computed in Python
(`default=`, `onupdate=`) is not applied on this path, and compiling refuses such a
statement.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, Select

Processor = Callable[[Any], Any] | None
Row = tuple[Any, ...]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters, in the order the SQL takes them
    # (position, processor) of the parameters whose type converts them for the driver
    bind_processors: tuple[tuple[int, Callable[[Any], Any]], ...]
    result_processors: tuple[Processor, ...]  # empty when no column needs one

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = [params[name] for name in self.names]
        for position, process in self.bind_processors:
            values[position] = process(values[position])
        return values

    def row(self, values: Sequence[Any]) -> Row:
        if not self.result_processors:
            return tuple(values)
        return tuple(
            value if process is None else process(value)
            for value, process in zip(values, self.result_processors, strict=True)
        )


class Statement:
    """A Core statement to run with `Direct`; compiled on first use, per dialect and per
    set of parameter names (an INSERT's columns are the names it is given)."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: weakref.WeakKeyDictionary[Dialect, dict[tuple[str, ...], _Compiled]]
        self._compiled = weakref.WeakKeyDictionary()

    def compiled(self, dialect: Dialect, names: tuple[str, ...]) -> _Compiled:
        forms = self._compiled.get(dialect)
        if forms is None:
            forms = self._compiled[dialect] = {}
        form = forms.get(names)
        if form is None:
            form = forms[names] = self._compile(dialect, names)
        return form

    def _compile(self, dialect: Dialect, names: tuple[str, ...]) -> _Compiled:
        compiled: Any = self.statement.compile(dialect=dialect, column_keys=list(names))
        defaulted = [*compiled.insert_prefetch, *compiled.update_prefetch]
        if defaulted:
            raise ValueError(
                f"give {', '.join(column.name for column in defaulted)} a value: "
                "Python-side column defaults are not applied here"
            )
        positions = tuple(compiled.positiontup or ())
        if any(compiled.binds[name].expanding for name in positions):
            raise ValueError("expanding parameters are not supported: bind each value")
        columns = self.statement.selected_columns if isinstance(self.statement, Select) else ()
        result_processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        bind_processors = [
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in positions
        ]
        return _Compiled(
            sql=compiled.string,
            names=positions,
            bind_processors=tuple(
                (position, process)
                for position, process in enumerate(bind_processors)
                if process is not None
            ),
            result_processors=result_processors if any(result_processors) else (),
        )
