"""The table of rows that sweeps, result sets and the experiments' readers return.

:class:`Table` is public as :class:`labkit.sweeps.Table`; it lives here, below every layer
that builds or reads rows (``docs/architecture.md``), so that the experiments' readers
(:mod:`labkit.experiments.stats`) return one without importing the sweep engine above them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["Table"]


class Table:
    """Rows of a sweep (dicts: configuration merged with results), with a few lookups.

    ``table.column("ratio")`` -> numpy array; ``table.where(n=100)`` -> sub-table;
    ``table.pivot("width", "n", "ratio")`` -> (row values, column values, 2-D array of the mean
    over the rows of each cell, e.g. over seeds; NaN where a combination is missing; ``agg=``
    another aggregate, or None to refuse a cell with several rows). No pandas needed;
    ``table.rows`` is the plain list. A column that no row holds is a KeyError naming it.
    """

    def __init__(self, rows: Sequence[Mapping]):
        self.rows = [dict(r) for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]

    def __repr__(self) -> str:
        cols = list(self.rows[0]) if self.rows else []
        return f"Table({len(self)} rows, columns {cols})"

    def column(self, name: str) -> np.ndarray:
        missing = [i for i, r in enumerate(self.rows) if name not in r]
        if missing:
            raise KeyError(f"column {name!r} missing from rows {missing[:5]}")
        return np.asarray([r[name] for r in self.rows])

    def _require(self, *names: str) -> None:
        """KeyError naming each column of ``names`` that some row lacks (``column``'s wording)."""
        for name in names:
            missing = [i for i, r in enumerate(self.rows) if name not in r]
            if missing:
                raise KeyError(f"column {name!r} missing from rows {missing[:5]}")

    def unique(self, name: str) -> list:
        self._require(name)
        return sorted({r[name] for r in self.rows}, key=lambda v: (v is None, v))

    def where(self, **conditions) -> Table:
        """The rows whose columns equal ``conditions``; a condition on a column that no row
        holds is a KeyError (a misspelt column would otherwise select nothing)."""
        absent = [k for k in conditions if self.rows and not any(k in r for r in self.rows)]
        if absent:
            raise KeyError(f"no row has column(s) {absent}; columns: {sorted(set().union(*self.rows))}")
        return Table([r for r in self.rows if all(r.get(k) == v for k, v in conditions.items())])

    def pivot(self, row: str, col: str, value: str, agg="mean"):
        """``(row values, column values, values)``: ``values[i, j]`` aggregates ``value`` over
        the rows with ``row == rows[i]`` and ``col == cols[j]`` (NaN where there is none; 0
        for ``"count"``). ``agg``: ``"mean"`` (default: the mean over the seeds of a cell),
        ``"median"``, ``"min"``, ``"max"``, ``"count"``, a callable taking the cell's values
        (a 1-D float array) and returning a number, or None, which raises a ValueError naming
        every cell that holds more than one row (for tables with one row per cell). A None
        value counts as NaN, so a cell holding one has a NaN mean."""
        if agg is not None and not callable(agg) and agg not in _AGGREGATES:
            raise ValueError(f"agg must be one of {sorted(_AGGREGATES)}, a callable or None, "
                             f"got {agg!r}")
        self._require(row, col, value)
        rows, cols = self.unique(row), self.unique(col)
        cells: dict[tuple[int, int], list[float]] = {}
        for r in self.rows:
            v = r[value]
            if v is not None and (isinstance(v, (bool, str)) or not np.isscalar(v)):
                raise TypeError(f"pivot needs a numeric column; {value!r} holds {v!r}")
            cell = cells.setdefault((rows.index(r[row]), cols.index(r[col])), [])
            cell.append(np.nan if v is None else float(v))
        if agg is None:
            repeated = [f"{row}={rows[i]!r}, {col}={cols[j]!r} ({len(v)} rows)"
                        for (i, j), v in sorted(cells.items()) if len(v) > 1]
            if repeated:
                raise ValueError(f"pivot with agg=None found several rows in the cells "
                                 f"{'; '.join(repeated)}; pass agg='mean' (or another) to "
                                 f"aggregate them, or select with where(...) first")
        reduce = (_AGGREGATES[agg] if isinstance(agg, str) else
                  (lambda v: v[0]) if agg is None else agg)
        out = np.full((len(rows), len(cols)), 0.0 if agg == "count" else np.nan)
        for (i, j), v in cells.items():
            out[i, j] = float(reduce(np.asarray(v, dtype=float)))
        return rows, cols, out


# How Table.pivot reduces the values of one cell.
_AGGREGATES = {"mean": np.mean, "median": np.median, "min": np.min, "max": np.max, "count": len}
