"""Chinese working-day calendar: statutory holidays, make-up workdays (调休) and company overrides.

Every due date the bot plans, every "N working days overdue" it reports and every shift after a paused project
goes through `WorkCalendar`, so the rules live in exactly one place:

1. a company override wins (``extra_workdays`` / ``extra_holidays``, from config or a TOML data file);
2. otherwise, within the years the ``chinese_calendar`` package has data for, its verdict (holidays and 调休);
3. otherwise (years the package does not know yet, e.g. 2027 with chinesecalendar 1.11) Monday-Friday.

The calendar never raises for a date outside the package's range: rule 3 applies, and the company is expected to
add the statutory holidays of a new year as overrides until the package is upgraded (`has_statutory_data` lets the
bot warn about it).

Counting conventions (all counts are in working days):

* ``roll_forward(d)``: d if it is a working day, else the next working day. ``roll_backward`` mirrors it.
* ``next_workday(d)`` / ``previous_workday(d)``: strictly after / strictly before d.
* ``add_workdays(d, n)`` (n >= 0): day 0 is ``roll_forward(d)``; the result is the n-th working day after it.
  So ``add_workdays(monday, 0) == monday``, ``add_workdays(saturday, 0)`` is the following working day, and
  ``add_workdays(phase_start, duration - 1)`` is the last day of a phase lasting ``duration`` working days.
* ``shift(d, n)``: any sign; n >= 0 is ``add_workdays``, n < 0 walks back from ``roll_backward(d)``.
* ``workdays_between(a, b)``: the working days in the half-open range [a, b), negative when b < a.
  For a deliverable due on ``due``, ``workdays_between(due, today)`` is how many working days it is overdue
  (0 on the due day itself, 1 on the next day when the due day was a working day).
  Invariants (tested): ``workdays_between(a, add_workdays(a, n)) == n`` and, for b >= a,
  ``add_workdays(a, workdays_between(a, b)) == roll_forward(b)``.

Performance: each year is computed once per calendar into a flag string plus a prefix count, so every query is a
dictionary look-up plus a ``find`` or a bisection; scanning thousands of deliverables costs microseconds each.
"""

from __future__ import annotations

import tomllib
from array import array
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar

__all__ = ["CalendarError", "WorkCalendar", "read_overrides_file"]

_WORKDAY = 1


class CalendarError(ValueError):
    """A calendar override (config list or data file) is unusable; the message is one line, in Chinese."""


@dataclass(frozen=True, slots=True)
class _Year:
    jan1: int  # ordinal of January 1st, to turn an index back into a date
    flags: bytes  # one byte per day, 1 = working day
    prefix: array  # prefix[i] = working days among the first i days of the year; len = days + 1
    statutory: bool  # whether chinese_calendar had data for this year

    @property
    def total(self) -> int:
        return self.prefix[-1]


def _as_date(value: date | datetime) -> date:
    # datetime is a subclass of date; compare and index by the calendar day only.
    return value.date() if isinstance(value, datetime) else value


class WorkCalendar:
    """Working days in mainland China, with company overrides. Cheap to query, safe to share between tasks.

    ``extra_holidays`` / ``extra_workdays`` and the optional ``data_file`` (TOML: ``holidays = [...]``,
    ``workdays = [...]``, items as TOML dates, ``"YYYY-MM-DD"`` strings or ``"YYYY-MM-DD..YYYY-MM-DD"`` ranges) are
    merged; a date given as both a holiday and a workday is refused with `CalendarError`.
    """

    def __init__(
        self,
        extra_holidays: Iterable[date] = (),
        extra_workdays: Iterable[date] = (),
        data_file: Path | str | None = None,
    ) -> None:
        holidays = {_as_date(d) for d in extra_holidays}
        workdays = {_as_date(d) for d in extra_workdays}
        if data_file is not None:
            file_holidays, file_workdays = read_overrides_file(Path(data_file))
            holidays |= file_holidays
            workdays |= file_workdays
        both = sorted(holidays & workdays)
        if both:
            raise CalendarError(f"日历覆盖设置冲突: {both[0].isoformat()} 同时被列为节假日和工作日")
        self._extra_holidays = frozenset(holidays)
        self._extra_workdays = frozenset(workdays)
        self._years: dict[int, _Year] = {}

    # -- facts about single days ------------------------------------------------------------------------------

    @property
    def extra_holidays(self) -> frozenset[date]:
        return self._extra_holidays

    @property
    def extra_workdays(self) -> frozenset[date]:
        return self._extra_workdays

    def is_workday(self, d: date | datetime) -> bool:
        d = _as_date(d)
        year = self._year(d.year)
        return year.flags[d.toordinal() - year.jan1] == _WORKDAY

    def is_holiday(self, d: date | datetime) -> bool:
        """A rest day: weekend, statutory holiday or company holiday."""
        return not self.is_workday(d)

    def has_statutory_data(self, year: int) -> bool:
        """Whether the statutory holidays of ``year`` are known (package data); if not, only weekends and company
        overrides apply, and the bot should ask the company to configure that year's holidays."""
        return self._year(year).statutory

    # -- moving between working days --------------------------------------------------------------------------

    def roll_forward(self, d: date | datetime) -> date:
        """``d`` if it is a working day, else the first working day after it."""
        d = _as_date(d)
        y = d.year
        year = self._year(y)
        index = d.toordinal() - year.jan1
        while True:
            found = year.flags.find(_WORKDAY, index)
            if found >= 0:
                return date.fromordinal(year.jan1 + found)
            y += 1
            year = self._year(y)
            index = 0

    def roll_backward(self, d: date | datetime) -> date:
        """``d`` if it is a working day, else the last working day before it."""
        d = _as_date(d)
        y = d.year
        year = self._year(y)
        end = d.toordinal() - year.jan1 + 1
        while True:
            found = year.flags.rfind(_WORKDAY, 0, end)
            if found >= 0:
                return date.fromordinal(year.jan1 + found)
            y -= 1
            year = self._year(y)
            end = len(year.flags)

    def next_workday(self, d: date | datetime) -> date:
        """The first working day strictly after ``d``."""
        return self.roll_forward(_as_date(d) + timedelta(days=1))

    def previous_workday(self, d: date | datetime) -> date:
        """The last working day strictly before ``d``."""
        return self.roll_backward(_as_date(d) - timedelta(days=1))

    def add_workdays(self, d: date | datetime, n: int) -> date:
        """The n-th working day after ``roll_forward(d)`` (n >= 0); ``add_workdays(d, 0) == roll_forward(d)``."""
        if n < 0:
            raise ValueError(f"add_workdays needs n >= 0, got {n}; use shift() to go back")
        start = self.roll_forward(d)
        y = start.year
        year = self._year(y)
        target = year.prefix[start.toordinal() - year.jan1] + n
        while target >= year.total:
            target -= year.total
            y += 1
            year = self._year(y)
        return date.fromordinal(year.jan1 + self._index_of_nth(year, target))

    def shift(self, d: date | datetime, n: int) -> date:
        """Move ``n`` working days forward (n >= 0, as `add_workdays`) or back (n < 0, counting from
        ``roll_backward(d)``). For a working day d, ``shift(shift(d, n), -n) == d``."""
        if n >= 0:
            return self.add_workdays(d, n)
        start = self.roll_backward(d)
        y = start.year
        year = self._year(y)
        target = year.prefix[start.toordinal() - year.jan1] + n
        while target < 0:
            y -= 1
            year = self._year(y)
            target += year.total
        return date.fromordinal(year.jan1 + self._index_of_nth(year, target))

    # -- counting -------------------------------------------------------------------------------------------------

    def workdays_between(self, a: date | datetime, b: date | datetime) -> int:
        """Working days in [a, b); ``-workdays_between(b, a)`` when b < a. See the module doc for the invariants."""
        a, b = _as_date(a), _as_date(b)
        if b < a:
            return -self.workdays_between(b, a)
        year_a = self._year(a.year)
        index_a = a.toordinal() - year_a.jan1
        year_b = self._year(b.year)
        index_b = b.toordinal() - year_b.jan1
        if a.year == b.year:
            return year_b.prefix[index_b] - year_a.prefix[index_a]
        count = year_a.total - year_a.prefix[index_a]
        for y in range(a.year + 1, b.year):
            count += self._year(y).total
        return count + year_b.prefix[index_b]

    def count_workdays(self, first: date | datetime, last: date | datetime) -> int:
        """Working days in the closed range [first, last]; 0 when last < first."""
        first, last = _as_date(first), _as_date(last)
        if last < first:
            return 0
        return self.workdays_between(first, last) + (1 if self.is_workday(last) else 0)

    # -- internals ------------------------------------------------------------------------------------------------

    @staticmethod
    def _index_of_nth(year: _Year, nth: int) -> int:
        # The working day whose prefix count is `nth` is the last index where prefix == nth: right after it the
        # count steps to nth + 1. Callers guarantee 0 <= nth < year.total.
        return bisect_right(year.prefix, nth) - 1

    def _year(self, y: int) -> _Year:
        cached = self._years.get(y)
        if cached is not None:
            return cached
        jan1 = date(y, 1, 1)
        days = (date(y + 1, 1, 1) - jan1).days if y < 9999 else 365
        statutory = _statutory_available(jan1)
        flags = bytearray(days)
        for i in range(days):
            d = jan1 + timedelta(days=i)
            if d in self._extra_workdays:
                flags[i] = _WORKDAY
            elif d in self._extra_holidays:
                flags[i] = 0
            elif statutory:
                flags[i] = _WORKDAY if chinese_calendar.is_workday(d) else 0
            else:
                flags[i] = _WORKDAY if d.weekday() < 5 else 0
        prefix = array("H", [0]) * (days + 1)
        running = 0
        for i, flag in enumerate(flags):
            running += flag
            prefix[i + 1] = running
        year = _Year(jan1=jan1.toordinal(), flags=bytes(flags), prefix=prefix, statutory=statutory)
        # A concurrent computation of the same year yields an equal value, so a lost race is harmless.
        self._years[y] = year
        return year


def _statutory_available(jan1: date) -> bool:
    # The package declares support per whole year and raises NotImplementedError outside it; asking once per year
    # keeps us correct whichever data range a future package version ships.
    try:
        chinese_calendar.is_workday(jan1)
    except NotImplementedError:
        return False
    return True


def read_overrides_file(path: Path) -> tuple[set[date], set[date]]:
    """Read a company calendar file: ``holidays = [...]`` and ``workdays = [...]`` (both optional).

    Items are TOML dates (``2027-01-01``), ISO strings, or inclusive ranges ``"2027-10-01..2027-10-07"``.
    Raises `CalendarError` with one line naming the file and the problem.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CalendarError(f"日历文件 {path} 不存在") from None
    except UnicodeDecodeError:
        raise CalendarError(f"日历文件 {path.name} 无效: 不是 UTF-8 编码") from None
    except tomllib.TOMLDecodeError as exc:
        raise CalendarError(f"日历文件 {path.name} 无效: TOML 语法错误: {exc}") from None
    unknown = sorted(set(data) - {"holidays", "workdays"})
    if unknown:
        raise CalendarError(f'日历文件 {path.name} 无效: 未知字段 "{unknown[0]}" (可用字段: holidays, workdays)')
    try:
        holidays = _parse_date_items(data.get("holidays", []), "holidays")
        workdays = _parse_date_items(data.get("workdays", []), "workdays")
    except ValueError as exc:
        raise CalendarError(f"日历文件 {path.name} 无效: {exc}") from None
    return holidays, workdays


def _parse_date_items(items: Any, key: str) -> set[date]:
    if not isinstance(items, list):
        raise ValueError(f"{key}: 应为日期列表")
    result: set[date] = set()
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if isinstance(item, datetime):
            raise ValueError(f"{where}: 应为日期而不是日期时间 ({item.isoformat()})")
        if isinstance(item, date):
            result.add(item)
        elif isinstance(item, str):
            result |= _parse_date_text(item.strip(), where)
        else:
            raise ValueError(f"{where}: 应为日期 (如 2027-01-01) 或日期范围 (如 \"2027-10-01..2027-10-07\")")
    return result


def _parse_date_text(text: str, where: str) -> set[date]:
    first_text, sep, last_text = text.partition("..")
    try:
        first = date.fromisoformat(first_text.strip())
        last = date.fromisoformat(last_text.strip()) if sep else first
    except ValueError:
        raise ValueError(f'{where}: 无法识别的日期 "{text}" (格式: 2027-01-01 或 2027-10-01..2027-10-07)') from None
    if last < first:
        raise ValueError(f'{where}: 日期范围 "{text}" 的结束早于开始')
    if (last - first).days > 366:
        raise ValueError(f'{where}: 日期范围 "{text}" 超过一年, 请检查')
    return {first + timedelta(days=i) for i in range((last - first).days + 1)}
