"""The project archive (电子资料存档) built from the database: shared by ``dingpm archive`` and the 归档 command.

``gather_project_archive`` reads the project's report data (every register entry and the audit trail), the newest
file of each deliverable and every stored 客户项目周报 in a short read; ``write_project_archive`` then writes the zip
with ``reports.archive.build_archive`` in a worker thread (it streams gigabytes of files: never on the event loop,
and never inside a transaction). ``build_project_archive`` does both. Files that went missing on disk are left
out and listed in ``ProjectArchive.missing`` rather than failing the whole archive.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any, TextIO

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.handover import handover_checklist
from domain.report_data import DEFAULT_TZ, gather_project_report, to_local
from reports.archive import (
    INTERNAL_WEEKLY_FOLDER,
    WEEKLY_FOLDER,
    ArchiveFile,
    ArchiveLink,
    ArchiveResult,
    WeeklyReportFile,
    build_archive,
    safe_component,
)
from storage.db import Database
from storage.models import Project, ReportVariant
from storage.repo import get_project_by_code
from storage.repo.report_queries import (
    deliverables_of,
    names_of,
    phases_of,
    weekly_reports_of,
)
from storage.templates import load_templates
from storage.workdays import WorkCalendar

ARCHIVES_FOLDER = "archives"
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ProjectArchive:
    result: ArchiveResult
    missing: tuple[str, ...] = ()  # deliverable files recorded in the database but not found on disk
    size: int = 0  # of the zip, in bytes

    @property
    def path(self) -> Path:
        return self.result.path


def default_archive_path(files_dir: Path | str, project_code: str, today: date) -> Path:
    """``<files_dir>/archives/XM-2026-001/XM-2026-001_项目归档_20261130.zip``."""
    code = safe_component(project_code)
    return Path(files_dir) / ARCHIVES_FOLDER / code / f"{code}_项目归档_{today:%Y%m%d}.zip"


def _resolve(root: Path, stored: str) -> Path:
    path = Path(stored)
    return path if path.is_absolute() else root / path


def _existing(paths: list[tuple[Any, Path]]) -> tuple[list[Any], list[Any]]:
    found, missing = [], []
    for item, path in paths:
        (found if path.is_file() else missing).append(item)
    return found, missing


@dataclass(frozen=True)
class ArchiveInputs:
    """What the archive of a project is made of, read from the database (no session needed to write it)."""

    project_code: str
    data: Any  # reports.model.ProjectReportData
    files: tuple[tuple[ArchiveFile, Path], ...]
    weekly: tuple[tuple[WeeklyReportFile, Path], ...]
    links: tuple[ArchiveLink, ...] = ()
    handover: dict[str, list[str]] | None = None  # the handover checklist: item -> what covers it
    handover_how: dict[str, str] | None = None  # item -> the command that would provide it


async def gather_project_archive(
    *,
    session: AsyncSession,
    project: Project,
    files_dir: Path | str,
    calendar: WorkCalendar,
    today: date,
    tz: tzinfo = DEFAULT_TZ,
    company_name: str = "",
    templates: Any = None,
) -> ArchiveInputs:
    """Read what the archive needs (a short read: writing the zip can take minutes and needs no transaction):
    every deliverable's latest version (a file to copy, or a link or note for the index), both variants of every
    weekly report, and, with ``templates``, the handover checklist its 项目交接清单 is printed from."""
    root = Path(files_dir)
    data = await gather_project_report(session=session, project=project, today=today, calendar=calendar, tz=tz,
                                       include_audit=True, company_name=company_name)
    phases = {p.id: p.name for p in await phases_of(session=session, project_ids=[project.id])}
    weekly: list[tuple[WeeklyReportFile, Path]] = []
    for report in await weekly_reports_of(session=session, project_id=project.id, variant=None):
        if report.file_path:
            path = _resolve(root, report.file_path)
            folder = INTERNAL_WEEKLY_FOLDER if report.variant == ReportVariant.INTERNAL else WEEKLY_FOLDER
            weekly.append((WeeklyReportFile(f"{report.iso_year}-W{report.iso_week:02d}", path, folder=folder), path))
    in_weekly = {path for _, path in weekly}
    rows = await deliverables_of(session=session, project_ids=[project.id])
    names = await names_of(session=session, user_ids=[v.submitted_by for _, v in rows if v is not None])
    files: list[tuple[ArchiveFile, Path]] = []
    links: list[ArchiveLink] = []
    for deliverable, version in rows:
        if version is None:
            continue
        phase = phases.get(deliverable.phase_id, "其他") if deliverable.phase_id is not None else "其他"
        if version.file_path:
            path = _resolve(root, version.file_path)
            if path not in in_weekly:  # the weekly reports have their own folder
                files.append((ArchiveFile(phase, deliverable.name, path, version.original_name or path.name), path))
        else:
            links.append(ArchiveLink(phase, deliverable.name, version.version, version.link or "", version.note or "",
                                     names.get(version.submitted_by, version.submitted_by),
                                     to_local(version.submitted_at, tz)))
    handover = how = None
    if templates is not None:
        checklist = await handover_checklist(session, templates, project)
        handover = {line.item: list(line.found) for line in checklist}
        how = {line.item: "或".join(line.how) for line in checklist if line.missing}
    return ArchiveInputs(project.code, data, tuple(files), tuple(weekly), tuple(links), handover, how)


async def write_project_archive(
    inputs: ArchiveInputs,
    *,
    files_dir: Path | str,
    today: date,
    out_path: Path | str | None = None,
    progress: Progress | None = None,
    generated_at: datetime | None = None,
) -> ProjectArchive:
    """Write the zip in a worker thread (it streams gigabytes of files: never on the event loop)."""

    def build() -> ProjectArchive:
        present_files, missing_files = _existing(list(inputs.files))
        present_weekly, _ = _existing(list(inputs.weekly))
        target = Path(out_path) if out_path is not None else default_archive_path(files_dir, inputs.project_code,
                                                                                  today)
        result = build_archive(inputs.data, present_files, present_weekly, target, progress, links=inputs.links,
                               handover=inputs.handover, handover_how=inputs.handover_how, generated_at=generated_at)
        missing = tuple(f"{f.phase}/{f.deliverable}/{f.original_name}" for f in missing_files)
        return ProjectArchive(result, missing, result.path.stat().st_size)

    return await asyncio.to_thread(build)


async def build_project_archive(
    *,
    session: AsyncSession,
    project: Project,
    files_dir: Path | str,
    calendar: WorkCalendar,
    today: date,
    tz: tzinfo = DEFAULT_TZ,
    out_path: Path | str | None = None,
    progress: Progress | None = None,
    company_name: str = "",
    templates: Any = None,
    generated_at: datetime | None = None,
) -> ProjectArchive:
    """Gather and write the archive zip of ``project`` in one go (``dingpm archive``). ``progress(done, total,
    name)`` is called from the worker thread after each file."""
    inputs = await gather_project_archive(session=session, project=project, files_dir=files_dir, calendar=calendar,
                                          today=today, tz=tz, company_name=company_name, templates=templates)
    return await write_project_archive(inputs, files_dir=files_dir, today=today, out_path=out_path,
                                       progress=progress, generated_at=generated_at)


# ---- ``dingpm archive <项目编号>`` ----------------------------------------------------------------------------------


class ProgressBar:
    """A one-line bar on a terminal stream: ``[#######-------]  12/40  01-启动/…``. Called from the worker thread."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self._last = 0

    def __call__(self, done: int, total: int, name: str) -> None:
        total = max(total, 1)
        filled = self.width * done // total
        shown = name if len(name) <= 40 else "…" + name[-39:]
        line = f"\r[{'#' * filled}{'-' * (self.width - filled)}] {done:>4}/{total:<4} {shown}"
        # Pad over the rest of a longer previous line.
        self.stream.write(line + " " * max(0, self._last - len(line)))
        self.stream.flush()
        self._last = len(line)

    def finish(self) -> None:
        if self._last:
            self.stream.write("\n")
            self.stream.flush()


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


async def archive_command(config: Any, project_code: str, out: Path | None = None, *,
                          stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """The CLI sub-command: exit code 0 with the zip's path on stdout, 1 when the project does not exist."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    cal = config.calendar
    calendar = await asyncio.to_thread(WorkCalendar, cal.extra_holidays, cal.extra_workdays, cal.data_file)
    templates = await asyncio.to_thread(load_templates, config.storage.templates_dir)
    database = Database(config.database.url)
    bar = ProgressBar(stderr)
    try:
        async with database.read() as session:
            project = await get_project_by_code(session=session, code=project_code)
            if project is None:
                print(f"未找到项目「{project_code}」，请检查项目编号。", file=stderr)
                return 1
            today = datetime.now(config.tz).date()
            inputs = await gather_project_archive(session=session, project=project,
                                                  files_dir=config.storage.files_dir, calendar=calendar, today=today,
                                                  tz=config.tz, company_name=config.organization.company_name,
                                                  templates=templates)
        archive = await write_project_archive(inputs, files_dir=config.storage.files_dir, today=today, out_path=out,
                                              progress=bar)
    finally:
        bar.finish()
        await database.close()
    for missing in archive.missing:
        print(f"警告：文件缺失，未归档：{missing}", file=stderr)
    result = archive.result
    print(f"已生成项目归档：{result.path}（{len(result.entries)} 个文件，{_size(result.total_bytes)}）", file=stdout)
    return 0


__all__ = [
    "ArchiveInputs",
    "ProgressBar",
    "ProjectArchive",
    "archive_command",
    "build_project_archive",
    "default_archive_path",
    "gather_project_archive",
    "write_project_archive",
]
