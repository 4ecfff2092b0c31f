"""An official schedule imported with ``dingpm calendar import`` reaches every process, on every backend.

The import runs the real command line against the test database; a second `Database` with its own `WorkCalendar`
stands for another bot process, which picks the schedule up through `CalendarSync` without a restart."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest

from bot.calendar_sync import CalendarSync
from bot.cli import main
from storage.db import Database
from storage.workdays import WorkCalendar

SCHEDULE = """日期,类型,名称
2027-01-01,休,元旦
2027-02-05..2027-02-11,休,春节
2027-02-20,班,春节调休上班
"""
CORRECTED = "日期,类型,名称\n2027-01-01,休,元旦\n2027-02-05..2027-02-11,休,春节\n"
MAKEUP_SATURDAY = date(2027, 2, 20)


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))  # the command runs its own event loop


async def test_an_import_reaches_another_process(db: Database, database_url: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    other = Database(database_url)
    calendar = WorkCalendar()
    sync = CalendarSync(other, calendar, interval_seconds=60)
    try:
        assert await sync.refresh() and not calendar.is_official(2027)  # nothing imported yet
        assert calendar.is_holiday(MAKEUP_SATURDAY) and calendar.is_holiday(date(2027, 1, 1))

        schedule = tmp_path / "国务院2027放假安排.csv"
        schedule.write_text(SCHEDULE, encoding="utf-8")
        assert await _cli("calendar", "import", str(schedule), "--url", database_url) == 0
        assert "已导入 2027 年的官方安排：8 个节假日、1 个调休上班日" in capsys.readouterr().out

        assert await sync.refresh()
        assert calendar.is_official(2027) and calendar.is_workday(MAKEUP_SATURDAY)
        assert calendar.is_holiday(date(2027, 1, 1)) and calendar.is_holiday(date(2027, 2, 8))
        assert not await sync.refresh()  # nothing changed: nothing reloaded

        # Options after the sub-command; the configuration's company holidays show beside the imported days.
        config = tmp_path / "config.toml"
        example = (Path(__file__).parents[2] / "config.example.toml").read_text(encoding="utf-8")
        config.write_text(example.replace("extra_holidays = []", "extra_holidays = [2027-04-30]")
                          .replace('url = "sqlite+aiosqlite:///data/dingpm.db"', f'url = "{database_url}"'), encoding="utf-8")
        assert await _cli("calendar", "show", "2027", "-c", str(config)) == 0
        shown = capsys.readouterr().out
        assert "2027-04-30 周五  休息  公司休息日（配置）" in shown
        assert "导入的官方安排（国务院2027放假安排.csv）" in shown
        assert "2027-02-20 周六  上班  春节调休上班（导入）" in shown and "2027-01-01 周五  休息  元旦（导入）" in shown

        # A corrected schedule replaces the year's rows: the Saturday is a rest day again everywhere.
        schedule.write_text(CORRECTED, encoding="utf-8")
        assert await _cli("calendar", "import", str(schedule), "--url", database_url) == 0
        assert await sync.refresh() and calendar.is_holiday(MAKEUP_SATURDAY) and calendar.is_official(2027)
    finally:
        await other.close()


async def test_a_bad_file_changes_nothing(db: Database, database_url: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("日期,类型,名称\n2027-01-01,放假吧,元旦\n", encoding="utf-8")
    assert await _cli("calendar", "import", str(bad), "--url", database_url) == 2
    assert "第 2 行：类型应为「休」或「班」" in capsys.readouterr().err
    calendar = WorkCalendar()
    assert await CalendarSync(db, calendar, interval_seconds=60).refresh()
    assert not calendar.is_official(2027)
