"""WorkCalendar: statutory facts from chinesecalendar 1.11, company overrides, counting invariants."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.workdays import CalendarError, OfficialDay, WorkCalendar, read_official_schedule

NATIONAL_DAY_2026 = [date(2026, 10, d) for d in range(1, 8)]
MAKEUP_SATURDAY = date(2026, 10, 10)


# -- statutory facts (as shipped by chinesecalendar 1.11) -----------------------------------------------------------


def test_national_day_2026_is_a_holiday_week_with_a_saturday_makeup_day(calendar: WorkCalendar) -> None:
    assert all(calendar.is_holiday(d) for d in NATIONAL_DAY_2026)
    assert MAKEUP_SATURDAY.weekday() == 5
    assert calendar.is_workday(MAKEUP_SATURDAY)
    assert calendar.is_holiday(date(2026, 10, 11))  # the Sunday after stays a rest day
    assert calendar.is_workday(date(2026, 9, 30))
    assert calendar.is_workday(date(2026, 10, 8))
    # The package also marks Sunday 2026-09-20 as a make-up workday (for the Mid-Autumn / National Day block).
    assert calendar.is_workday(date(2026, 9, 20))


def test_moving_across_national_day(calendar: WorkCalendar) -> None:
    assert calendar.next_workday(date(2026, 9, 30)) == date(2026, 10, 8)
    assert calendar.add_workdays(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert calendar.add_workdays(date(2026, 10, 8), 2) == MAKEUP_SATURDAY
    assert calendar.previous_workday(date(2026, 10, 8)) == date(2026, 9, 30)
    assert calendar.shift(date(2026, 10, 12), -1) == MAKEUP_SATURDAY
    # [09-30, 10-12): 09-30, 10-08, 10-09, 10-10
    assert calendar.workdays_between(date(2026, 9, 30), date(2026, 10, 12)) == 4
    assert calendar.workdays_between(date(2026, 10, 12), date(2026, 9, 30)) == -4
    assert calendar.count_workdays(date(2026, 10, 1), date(2026, 10, 7)) == 0


def test_add_workdays_zero_rolls_forward_and_counts_from_there(calendar: WorkCalendar) -> None:
    monday = date(2026, 3, 2)
    saturday = date(2026, 3, 7)
    assert calendar.add_workdays(monday, 0) == monday
    assert calendar.add_workdays(monday, 1) == date(2026, 3, 3)
    assert calendar.add_workdays(saturday, 0) == date(2026, 3, 9)
    assert calendar.add_workdays(saturday, 1) == date(2026, 3, 10)
    assert calendar.roll_forward(saturday) == date(2026, 3, 9)
    assert calendar.roll_backward(saturday) == date(2026, 3, 6)
    assert calendar.next_workday(monday) == date(2026, 3, 3)  # strictly after
    assert calendar.previous_workday(date(2026, 3, 9)) == date(2026, 3, 6)  # strictly before
    assert calendar.previous_workday(monday) == date(2026, 2, 28)  # a make-up Saturday (Spring Festival)
    with pytest.raises(ValueError):
        calendar.add_workdays(monday, -1)


def test_overdue_counting_convention(calendar: WorkCalendar) -> None:
    due = date(2026, 3, 6)  # a Friday
    assert calendar.workdays_between(due, due) == 0
    assert calendar.workdays_between(due, date(2026, 3, 7)) == 1  # Saturday: Friday has passed
    assert calendar.workdays_between(due, date(2026, 3, 9)) == 1
    assert calendar.workdays_between(due, date(2026, 3, 10)) == 2


def test_datetimes_are_treated_as_their_day(calendar: WorkCalendar) -> None:
    assert calendar.is_workday(datetime(2026, 10, 10, 9, 30))
    assert calendar.add_workdays(datetime(2026, 9, 30, 23, 0), 1) == date(2026, 10, 8)


# -- beyond the package's data ---------------------------------------------------------------------------------------


def test_years_without_package_data_use_the_statutory_holidays_without_makeup_days(calendar: WorkCalendar) -> None:
    assert calendar.has_statutory_data(2026)
    assert not calendar.has_statutory_data(2027)
    # chinesecalendar 1.11 stops at 2026; the holidays package knows 元旦 2027 (a Friday) and 春节 2027.
    assert calendar.is_holiday(date(2027, 1, 1))
    assert calendar.is_holiday(date(2027, 1, 2))
    assert calendar.add_workdays(date(2026, 12, 31), 1) == date(2027, 1, 4)
    assert all(calendar.is_holiday(date(2027, 2, d)) for d in range(5, 11))  # 除夕 to the days in lieu
    assert calendar.is_holiday(date(2027, 2, 20))  # no 调休 Saturday without the official schedule
    assert calendar.add_workdays(date(2030, 6, 7), 1) == date(2030, 6, 10)
    assert calendar.workdays_between(date(2026, 12, 31), date(2028, 1, 1)) > 240
    assert calendar.estimated_years(date(2026, 12, 7), date(2027, 6, 30)) == [2027]
    assert calendar.estimated_years(date(2026, 3, 1), date(2026, 12, 31)) == []
    assert "不含调休" in calendar.source(2027) and "chinesecalendar" in calendar.source(2026)


OFFICIAL_2027 = """日期,类型,名称
2027-01-01,休,元旦
2027-02-05..2027-02-11,休,春节
2027-02-20,班,春节调休上班
"""


def test_an_imported_official_schedule_rules_its_year(tmp_path: Path) -> None:
    """2027: 元旦 and 春节 are not working days, and the imported 调休 Saturday is one."""
    schedule = tmp_path / "2027.csv"
    schedule.write_bytes(OFFICIAL_2027.encode("utf-8-sig"))  # as Excel saves a CSV
    days = read_official_schedule(schedule)
    assert len(days) == 9 and days[-1] == OfficialDay(date(2027, 2, 20), True, "春节调休上班", "2027.csv")
    calendar = WorkCalendar(extra_holidays=[date(2027, 4, 30)])
    assert calendar.is_holiday(date(2027, 2, 20)) and not calendar.is_official(2027)
    calendar.set_official(days)
    assert calendar.is_official(2027) and "2027.csv" in calendar.source(2027)
    assert calendar.is_holiday(date(2027, 1, 1))
    assert all(calendar.is_holiday(date(2027, 2, d)) for d in range(5, 12))
    assert date(2027, 2, 20).weekday() == 5 and calendar.is_workday(date(2027, 2, 20))
    assert calendar.next_workday(date(2027, 2, 4)) == date(2027, 2, 12)
    assert calendar.add_workdays(date(2027, 2, 19), 1) == date(2027, 2, 20)
    assert calendar.is_holiday(date(2027, 4, 30))  # a company override still wins
    assert calendar.estimated_years(date(2026, 12, 7), date(2027, 6, 30)) == []
    assert (date(2027, 2, 20), True, "春节调休上班", "导入") in calendar.known_days(2027)
    calendar.set_official([])  # withdrawn: the year is an estimate again
    assert calendar.is_holiday(date(2027, 2, 20)) and not calendar.is_official(2027)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("date,kind\n2027-01-01,休\n", "第一行应为表头「日期,类型,名称」"),
        ("日期,类型,名称\n2027-01-01,放羊,元旦\n", "第 2 行：类型应为「休」或「班」"),
        ("日期,类型,名称\n2027-02-30,休,春节\n", "第 2 行: 无法识别的日期"),
        ("日期,类型,名称\n2027-02-20,班,调休\n", "只有上班日、没有节假日"),
        ("日期,类型,名称\n2027-01-01,休,元旦\n2027-01-01,班,元旦\n", "既是休息日又是上班日"),
        ("日期,类型,名称\n", "没有日期"),
    ],
)
def test_bad_official_schedules_are_refused_with_the_row(tmp_path: Path, text: str, fragment: str) -> None:
    schedule = tmp_path / "bad.csv"
    schedule.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarError, match=re.escape(fragment)):
        read_official_schedule(schedule)


def test_company_overrides_apply_beyond_and_within_the_package_range() -> None:
    calendar = WorkCalendar(
        extra_holidays=[date(2027, 1, 1), date(2026, 10, 9)],
        extra_workdays=[date(2027, 1, 9), date(2026, 10, 5)],
    )
    assert calendar.is_holiday(date(2027, 1, 1))
    assert calendar.is_workday(date(2027, 1, 9))  # a Saturday made a workday
    assert calendar.is_holiday(date(2026, 10, 9))  # overrides win over the package
    assert calendar.is_workday(date(2026, 10, 5))
    assert calendar.add_workdays(date(2026, 12, 31), 1) == date(2027, 1, 4)
    assert calendar.extra_holidays == {date(2027, 1, 1), date(2026, 10, 9)}


def test_override_data_file(tmp_path: Path) -> None:
    data = tmp_path / "calendar.toml"
    data.write_text(
        'holidays = [2027-01-01, "2027-02-05..2027-02-11"]\nworkdays = ["2027-02-13"]\n',
        encoding="utf-8",
    )
    calendar = WorkCalendar(extra_holidays=[date(2027, 5, 3)], data_file=data)
    assert calendar.is_holiday(date(2027, 1, 1))
    assert all(calendar.is_holiday(date(2027, 2, d)) for d in range(5, 12))
    assert calendar.is_workday(date(2027, 2, 13))
    assert calendar.is_holiday(date(2027, 5, 3))
    assert calendar.next_workday(date(2027, 2, 4)) == date(2027, 2, 12)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("holidays = [2027-01-01\n", "TOML 语法错误"),
        ('holiday = ["2027-01-01"]\n', '未知字段 "holiday"'),
        ('holidays = ["2027-13-01"]\n', 'holidays[0]: 无法识别的日期 "2027-13-01"'),
        ('workdays = ["2027-02-10..2027-02-01"]\n', "结束早于开始"),
        ("workdays = 3\n", "workdays: 应为日期列表"),
        ('holidays = ["2027-01-01"]\nworkdays = ["2027-01-01"]\n', "同时被列为节假日和工作日"),
    ],
)
def test_broken_override_file_is_one_clear_line(tmp_path: Path, text: str, fragment: str) -> None:
    data = tmp_path / "calendar.toml"
    data.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarError) as caught:
        WorkCalendar(data_file=data)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message


def test_missing_override_file() -> None:
    with pytest.raises(CalendarError, match="不存在"):
        WorkCalendar(data_file=Path("/nonexistent/calendar.toml"))


def test_scanning_many_dates_is_fast(calendar: WorkCalendar) -> None:
    # Thousands of overdue checks per scheduler run must stay cheap: years are computed once and cached.
    import time

    start = time.perf_counter()
    today = date(2026, 11, 20)
    for i in range(20_000):
        due = date(2026, 1, 1) + timedelta(days=i % 700)
        calendar.workdays_between(due, today)
        calendar.add_workdays(due, i % 50)
    assert time.perf_counter() - start < 2.0


# -- properties ------------------------------------------------------------------------------------------------------

OVERRIDES = WorkCalendar(
    extra_holidays=[date(2027, 1, 1), date(2027, 10, 1), date(2026, 6, 1)],
    extra_workdays=[date(2027, 9, 25), date(2026, 10, 4)],
)
dates = st.dates(min_value=date(2020, 1, 1), max_value=date(2029, 12, 31))
calendars = st.sampled_from([WorkCalendar(), OVERRIDES])
counts = st.integers(min_value=0, max_value=600)


@settings(max_examples=300, deadline=None)
@given(calendars, dates, counts)
def test_add_workdays_returns_a_workday_consistent_with_counting(cal: WorkCalendar, d: date, n: int) -> None:
    result = cal.add_workdays(d, n)
    assert cal.is_workday(result)
    assert result >= d
    assert cal.workdays_between(d, result) == n
    if cal.is_workday(d):
        assert cal.shift(result, -n) == d


@settings(max_examples=300, deadline=None)
@given(calendars, dates, dates)
def test_workdays_between_matches_add_workdays(cal: WorkCalendar, a: date, b: date) -> None:
    between = cal.workdays_between(a, b)
    assert between == -cal.workdays_between(b, a)
    if b >= a:
        assert cal.add_workdays(a, between) == cal.roll_forward(b)


@settings(max_examples=200, deadline=None)
@given(calendars, dates, st.integers(min_value=0, max_value=40))
def test_add_workdays_matches_a_day_by_day_walk(cal: WorkCalendar, d: date, n: int) -> None:
    walk = d
    while not cal.is_workday(walk):
        walk += timedelta(days=1)
    for _ in range(n):
        walk += timedelta(days=1)
        while not cal.is_workday(walk):
            walk += timedelta(days=1)
    assert cal.add_workdays(d, n) == walk
    naive = sum(1 for i in range((walk - d).days) if cal.is_workday(d + timedelta(days=i)))
    assert cal.workdays_between(d, walk) == naive


@settings(max_examples=200, deadline=None)
@given(calendars, dates, st.integers(min_value=-400, max_value=400))
def test_shift_lands_on_a_workday(cal: WorkCalendar, d: date, n: int) -> None:
    result = cal.shift(d, n)
    assert cal.is_workday(result)
    assert (result >= d) if n >= 0 else (result < d)
