"""Chinese working-day calendar: statutory holidays, make-up workdays (调休) and company overrides.

Every due date the bot plans, every "N working days overdue" it reports and every shift after a paused project
goes through `WorkCalendar`, so the rules live in exactly one place:

1. a company override wins (``extra_workdays`` / ``extra_holidays``, from config or a TOML data file);
2. otherwise, in a year whose official schedule was imported (``dingpm calendar import``, kept in the database and
   handed over with `set_official`), that schedule: its holidays and 调休 workdays, weekends for the other days;
3. otherwise, within the years the ``chinese_calendar`` package has data for, its verdict (holidays and 调休);
4. otherwise (years neither knows yet, e.g. 2027 with chinesecalendar 1.11) the statutory holidays the ``holidays``
   package computes for China (the fixed rules: 元旦, 春节, 清明, 劳动节, 端午, 中秋, 国庆), without 调休 (the State
   Council announces those each year), and weekends.

The calendar never raises for a date outside every source's range. Years under rule 4 are estimates: `is_official`
tells, so a plan or reply that crosses into such a year can say so.

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

import csv
import functools
import io
import tomllib
from array import array
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar

__all__ = ["CalendarError", "OfficialDay", "WorkCalendar", "read_official_schedule", "read_overrides_file"]

_WORKDAY = 1


class CalendarError(ValueError):
    """A calendar override (config list or data file) is unusable; the message is one line, in Chinese."""


@dataclass(frozen=True, slots=True)
class OfficialDay:
    """One day of an imported official schedule: a holiday (``working`` False) or a 调休 workday."""

    day: date
    working: bool
    name: str
    source: str  # where it came from, e.g. the imported file's name

    @property
    def year(self) -> int:
        return self.day.year


@dataclass(frozen=True, slots=True)
class _Year:
    jan1: int  # ordinal of January 1st, to turn an index back into a date
    flags: bytes  # one byte per day, 1 = working day
    prefix: array  # prefix[i] = working days among the first i days of the year; len = days + 1
    statutory: bool  # whether the year's official schedule (with 调休) is known: imported or chinese_calendar

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
        self._official: dict[date, OfficialDay] = {}
        self._official_years: frozenset[int] = frozenset()
        self._years: dict[int, _Year] = {}

    def set_official(self, days: Iterable[OfficialDay]) -> None:
        """Use these imported official schedules (replacing the ones set before): every year they cover follows them.
        The swap is two assignments, so a reader sees the old or the new schedule, never a mix of years."""
        official = {d.day: d for d in days}
        years = frozenset(d.year for d in official)
        stale = years | self._official_years  # only those years change; the others keep their computed flags
        self._official, self._official_years = official, years
        self._years = {y: computed for y, computed in self._years.items() if y not in stale}

    def prepare(self, years: Iterable[int]) -> WorkCalendar:
        """Compute these years now (in the calling thread): the first estimated year imports and runs the holidays
        package (about half a second), which must not happen on the event loop in the middle of a command."""
        for year in years:
            self._year(year)
        return self

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
        """Whether the official schedule of ``year`` (holidays and 调休) is known: imported, or chinese_calendar's."""
        return self._year(year).statutory

    is_official = has_statutory_data

    def estimated_years(self, first: date | datetime, last: date | datetime) -> list[int]:
        """The years from ``first`` to ``last`` whose holidays are only estimated (no official schedule yet)."""
        low, high = sorted((_as_date(first).year, _as_date(last).year))
        return [y for y in range(low, high + 1) if not self.is_official(y)]

    def source(self, year: int) -> str:
        """Where the working days of ``year`` come from, in Chinese (for ``dingpm calendar show``)."""
        if year in self._official_years:
            files = sorted({d.source for d in self._official.values() if d.year == year})
            return f"导入的官方安排（{'、'.join(files)}）：节假日与调休上班日"
        if _statutory_available(date(year, 1, 1)):
            return f"chinesecalendar {chinese_calendar.__version__} 内置的国务院安排：节假日与调休上班日"
        if _estimated_holidays(year):
            return "holidays 包按规则推算的法定节日（不含调休，官方安排公布后请导入）"
        return "没有节假日数据：仅按周末计算"

    def known_days(self, year: int) -> list[tuple[date, bool, str, str]]:
        """Every day of ``year`` that is not an ordinary weekday or weekend: (day, working, name, where from)."""
        days: dict[date, tuple[date, bool, str, str]] = {}
        if year in self._official_years:
            for d in self._official.values():
                if d.year == year:
                    days[d.day] = (d.day, d.working, d.name, "导入")
        elif _statutory_available(date(year, 1, 1)):
            for when, name in chinese_calendar.holidays.items():
                if when.year == year and when.weekday() < 5:
                    days[when] = (when, False, _CHINESE_NAMES.get(name, name), "chinesecalendar")
            for when, name in chinese_calendar.workdays.items():
                if when.year == year:
                    days[when] = (when, True, f"{_CHINESE_NAMES.get(name, name)}调休上班", "chinesecalendar")
        else:
            for when, name in _estimated_holidays(year).items():
                days[when] = (when, False, name, "推算")
        for when in self._extra_holidays:
            if when.year == year:
                days[when] = (when, False, "公司休息日", "配置")
        for when in self._extra_workdays:
            if when.year == year:
                days[when] = (when, True, "公司上班日", "配置")
        return [days[when] for when in sorted(days)]

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
        official = self._official if y in self._official_years else None
        package = official is None and _statutory_available(jan1)
        estimated = _estimated_holidays(y) if official is None and not package else {}
        flags = bytearray(days)
        for i in range(days):
            d = jan1 + timedelta(days=i)
            if d in self._extra_workdays:
                flags[i] = _WORKDAY
            elif d in self._extra_holidays:
                flags[i] = 0
            elif official is not None and d in official:
                flags[i] = _WORKDAY if official[d].working else 0
            elif package:
                flags[i] = _WORKDAY if chinese_calendar.is_workday(d) else 0
            else:
                flags[i] = _WORKDAY if d.weekday() < 5 and d not in estimated else 0
        prefix = array("H", [0]) * (days + 1)
        running = 0
        for i, flag in enumerate(flags):
            running += flag
            prefix[i + 1] = running
        year = _Year(jan1=jan1.toordinal(), flags=bytes(flags), prefix=prefix, statutory=official is not None or package)
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


_CHINESE_NAMES = {holiday.value: holiday.chinese for holiday in chinese_calendar.Holiday}


@functools.lru_cache(maxsize=64)
def _estimated_holidays(year: int) -> dict[date, str]:
    """China's statutory holidays of ``year`` by the ``holidays`` package's rules (lunar dates computed), no 调休."""
    import holidays  # loaded on first need: only years beyond chinese_calendar's data ask for it

    try:
        found = holidays.country_holidays("CN", years=year, language="zh_CN")
    except (NotImplementedError, KeyError, ValueError):  # a year or language a future release drops
        return {}
    return {day: name for day, name in found.items() if day.year == year}


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


# ---- an official schedule, as published by the State Council each year -----------------------------------------

SCHEDULE_KINDS = {"休": False, "假": False, "休息": False, "放假": False, "节假日": False,
                  "班": True, "上班": True, "调休": True, "调休上班": True, "补班": True, "工作日": True}
SCHEDULE_EXAMPLE = "日期,类型,名称\n2027-01-01,休,元旦\n2027-02-05..2027-02-11,休,春节\n2027-02-20,班,春节调休上班"


def read_official_schedule(path: Path) -> list[OfficialDay]:
    """A year's official schedule from a CSV file with the header ``日期,类型,名称``: one row per date or inclusive
    range (``2027-02-05..2027-02-11``), 类型 ``休`` (a holiday) or ``班`` (a 调休 workday). UTF-8 (with or without BOM,
    as Excel saves it) or GB18030. Raises `CalendarError` with one Chinese line naming the row and the problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CalendarError(f"无法读取日历文件 {path}（{exc.strerror or exc}）") from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise CalendarError(f"日历文件 {path.name} 无效：不是 UTF-8 或 GB18030 编码的文本")
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if not rows or [cell.strip() for cell in rows[0][:3]] != ["日期", "类型", "名称"]:
        raise CalendarError(f"日历文件 {path.name} 无效：第一行应为表头「日期,类型,名称」，例如：\n{SCHEDULE_EXAMPLE}")
    days: dict[date, OfficialDay] = {}
    for number, row in enumerate(rows[1:], start=2):
        cells = [cell.strip() for cell in row] + ["", "", ""]
        when, kind, name = cells[:3]
        if kind not in SCHEDULE_KINDS:
            raise CalendarError(f"日历文件 {path.name} 第 {number} 行：类型应为「休」或「班」，收到「{kind[:10]}」")
        try:
            dates = _parse_date_text(when, f"第 {number} 行")
        except ValueError as exc:
            raise CalendarError(f"日历文件 {path.name} {exc}") from None
        working = SCHEDULE_KINDS[kind]
        for day in sorted(dates):
            if day in days and days[day].working != working:
                raise CalendarError(f"日历文件 {path.name} 第 {number} 行：{day.isoformat()} 既是休息日又是上班日")
            days[day] = OfficialDay(day, working, (name or ("调休上班" if working else "节假日"))[:64], path.name[:128])
    if not days:
        raise CalendarError(f"日历文件 {path.name} 没有日期，例如：\n{SCHEDULE_EXAMPLE}")
    for year in sorted({d.year for d in days}):
        if not any(d.year == year and not d.working for d in days.values()):
            raise CalendarError(f"日历文件 {path.name} 中 {year} 年只有上班日、没有节假日：导入会让这一年没有任何假期，"
                                "请写全当年的放假安排")
    return [days[day] for day in sorted(days)]
