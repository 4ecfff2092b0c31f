"""The official working-day schedules imported with ``dingpm calendar import`` (holidays and 调休 workdays).

They live in the database, not in a file, so that every bot process sees the same schedule: each loads the table
at start and polls it for changes (``bot.calendar_sync``). One row per date; a year present here is ruled by its rows
(storage/workdays.py, rule 2).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field

from storage.models.base import SHORT_LEN, TableBase, created_at_field, table_args


class CalendarDay(TableBase, table=True):
    __tablename__ = "calendar_days"
    __table_args__ = table_args()

    day: date = Field(primary_key=True)
    working: bool = Field(nullable=False)  # True: a 调休 workday (a weekend made working); False: a holiday
    name: str = Field(max_length=SHORT_LEN * 2)  # 春节, 春节调休上班
    source: str = Field(max_length=SHORT_LEN * 4)  # the imported file's name
    imported_at: datetime = created_at_field()
