"""The demand of a planned day: expected arrivals per hour and service, read from a CSV file of
``hour,service,arrivals`` rows (see docs/planning.md)."""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

from ..config import Site

COLUMNS = ("hour", "service", "arrivals")
MAX_ARRIVALS_PER_HOUR = 100_000


class ArrivalsError(ValueError):
    """A problem in an arrivals file; ``str()`` names the file, the line and the problem."""

    def __init__(self, path: str | Path, line: int | None, problem: str):
        self.path, self.line, self.problem = str(path), line, problem
        super().__init__(f"{self.path}:{line}: {problem}" if line else f"{self.path}: {problem}")


@dataclass(frozen=True)
class Demand:
    """Expected arrivals per hour: ``rates[service][hour]``, hour 0-23 of the local day."""

    rates: dict[str, dict[int, float]]

    def services(self) -> list[str]:
        return list(self.rates)

    def hours(self, service: str) -> list[int]:
        """Every hour from the service's first to its last row (missing hours: no arrivals)."""
        hours = self.rates[service]
        return list(range(min(hours), max(hours) + 1))

    def arrivals(self, service: str, hour: int) -> float:
        return self.rates[service].get(hour, 0.0)


_HOUR = re.compile(r"(\d{1,2})(?::00)?")


def read_arrivals(path: str | Path, site: Site) -> Demand:
    """Read ``hour,service,arrivals`` rows (header first; ``#`` comment lines and blank lines
    are skipped). Raises ``ArrivalsError`` at the first problem."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a spreadsheet's BOM is welcome
    except OSError as exc:
        raise ArrivalsError(path, None, f"cannot read file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ArrivalsError(path, None, f"file is not UTF-8 (byte {exc.start}); save it as UTF-8 CSV") from None
    known = {s.code for s in site.services}
    columns: dict[str, int] | None = None
    rates: dict[str, dict[int, float]] = {}
    first_line: dict[tuple[str, int], int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in next(csv.reader([raw]))]
        if columns is None:
            columns = _header(path, number, fields)
            continue
        if len(fields) != len(columns):
            raise ArrivalsError(
                path, number, f"expected {len(columns)} fields ({','.join(columns)}), found {len(fields)}"
            )
        hour_text, service, count_text = (fields[columns[name]] for name in COLUMNS)
        match = _HOUR.fullmatch(hour_text)
        if match is None or int(match[1]) > 23:
            raise ArrivalsError(path, number, f"hour {hour_text!r} is not an hour of the day: 0-23 or HH:00")
        hour = int(match[1])
        if service not in known:
            raise ArrivalsError(
                path, number, f"unknown service {service!r}: the site {site.id} has {', '.join(sorted(known))}"
            )
        try:
            count = float(count_text)
        except ValueError:
            raise ArrivalsError(path, number, f"arrivals {count_text!r} is not a number") from None
        if not math.isfinite(count) or count < 0 or count > MAX_ARRIVALS_PER_HOUR:
            raise ArrivalsError(path, number, f"arrivals {count_text!r} must be between 0 and {MAX_ARRIVALS_PER_HOUR}")
        if (service, hour) in first_line:
            raise ArrivalsError(
                path, number, f"hour {hour}, service {service!r} is already given on line {first_line[(service, hour)]}"
            )
        first_line[(service, hour)] = number
        rates.setdefault(service, {})[hour] = count
    if columns is None:
        raise ArrivalsError(path, None, f"no header: the first line must be {','.join(COLUMNS)}")
    if not rates:
        raise ArrivalsError(path, None, "no rows after the header")
    return Demand(rates)


def _header(path: Path, number: int, fields: list[str]) -> dict[str, int]:
    names = [f.lower() for f in fields]
    for name in names:
        if name not in COLUMNS:
            raise ArrivalsError(path, number, f"header: unknown column {name!r} (the columns are {','.join(COLUMNS)})")
    for name in COLUMNS:
        if name not in names:
            raise ArrivalsError(path, number, f"header: missing column {name!r} (the columns are {','.join(COLUMNS)})")
    if len(set(names)) != len(names):
        raise ArrivalsError(path, number, "header: a column is named twice")
    return {name: names.index(name) for name in COLUMNS}
