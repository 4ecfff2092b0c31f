"""文档 <名称> in chat, and the project archive (``build_project_archive`` and ``dingpm archive``)."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from pathlib import Path

from bot.cli import main as cli_main
from domain.archive_service import archive_command, build_project_archive, default_archive_path
from domain.replies import File, Markdown, Text
from handlers import documents
from handlers.weekly_reports import REPORTS_FOLDER
from storage.models import DeliverableStatus, ReportVariant
from storage.repo import record_weekly_report
from storage.workdays import WorkCalendar
from tests.features.reports_world import (
    ChatHarness,
    DeliverableSpec,
    ProjectSpec,
    add_people,
    add_project,
    make_config,
    make_services,
    sh,
    utc,
)


def project_spec() -> ProjectSpec:
    return ProjectSpec(
        "智慧工厂MES项目", internal="cid-internal", client="cid-client",
        deliverables=[
            DeliverableSpec("项目立项申请表", date(2026, 9, 5), phase="启动", status=DeliverableStatus.SUBMITTED,
                            submitted_at=utc("2026-09-04T10:00"), file=("立项申请表（签字版）.pdf", b"%PDF-1.4 scan")),
            DeliverableSpec("需求调研报告", date(2026, 10, 9), phase="规划", status=DeliverableStatus.SUBMITTED,
                            submitted_at=utc("2026-10-09T10:00"), file=("需求调研报告.docx", b"PK docx")),
            DeliverableSpec("丢失的文件", date(2026, 10, 9), phase="规划", status=DeliverableStatus.SUBMITTED,
                            submitted_at=utc("2026-10-09T10:00"), file=("丢失.xlsx", b"PK xlsx")),
        ],
    )


async def seed(database, files_dir: Path):
    async with database.write() as session:
        await add_people(session)
        return await add_project(session, project_spec(), files_dir=files_dir)


async def test_document_command_sends_a_filled_in_docx(sqlite_db, tmp_path: Path) -> None:
    config = make_config(tmp_path / "files")
    await seed(sqlite_db, Path(config.storage.files_dir))
    chat = ChatHarness(make_services(sqlite_db, config, sh("2026-10-12T10:00")), documents.feature)

    [reply] = await chat.say("文档 《立项申请表》")
    assert isinstance(reply, File) and reply.name.startswith("项目立项申请表_XM-2026-")
    with zipfile.ZipFile(io.BytesIO(reply.data)) as docx:
        body = docx.read("word/document.xml").decode("utf-8")
    assert "智慧工厂MES项目" in body and "华东某制造集团" in body and "王建国" in body

    [listing] = await chat.say("文档 不存在的表")
    assert isinstance(listing, Markdown) and "没有找到文档「不存在的表」" in listing.text
    assert "项目验收确认单" in listing.text and "上线确认单" in listing.text
    [bare] = await chat.say("文档")
    assert isinstance(bare, Markdown) and "没有找到" not in bare.text and "项目交接清单" in bare.text

    [missing] = await chat.say("文档 升级确认单")
    assert isinstance(missing, Text) and "还没有升级记录" in missing.text


async def test_archive_holds_every_file_the_weekly_reports_and_the_registers(sqlite_db, tmp_path: Path) -> None:
    files_dir = tmp_path / "files"
    project = await seed(sqlite_db, files_dir)
    (files_dir / "deliverables" / project.code).mkdir(parents=True, exist_ok=True)
    lost = next(p for p in (files_dir / "deliverables" / project.code).iterdir() if p.suffix == ".xlsx")
    lost.unlink()
    weekly = files_dir / REPORTS_FOLDER / project.code / "客户项目周报.docx"
    weekly.parent.mkdir(parents=True)
    weekly.write_bytes(b"PK weekly")
    async with sqlite_db.write() as session:
        await record_weekly_report(session=session, project_id=project.id, iso_year=2026, iso_week=41,
                                   content_md="…", variant=ReportVariant.CLIENT,
                                   file_path=str(weekly.relative_to(files_dir)), sent_at=utc("2026-10-09T17:00"))
    calls: list[tuple[int, int, str]] = []
    async with sqlite_db.read() as session:
        archive = await build_project_archive(session=session, project=project, files_dir=files_dir,
                                              calendar=WorkCalendar(), today=date(2026, 12, 1),
                                              progress=lambda done, total, name: calls.append((done, total, name)))
    assert archive.path == default_archive_path(files_dir, project.code, date(2026, 12, 1))
    assert archive.missing == ("规划/丢失的文件/丢失.xlsx",)
    names = zipfile.ZipFile(archive.path).namelist()
    assert "01-启动/项目立项申请表/立项申请表（签字版）.pdf" in names
    assert "02-规划/需求调研报告/需求调研报告.docx" in names
    assert "客户项目周报/2026-W41_客户项目周报.docx" in names
    assert {"项目管理记录/项目登记表.xlsx", "项目管理记录/审批记录.docx", "项目管理记录/操作日志.csv", "索引.md"} <= set(names)
    assert calls[-1][0] == calls[-1][1] == len(calls)


async def test_dingpm_archive_prints_a_progress_bar_and_the_path(sqlite_database_url, sqlite_db, tmp_path: Path,
                                                                 capsys) -> None:
    files_dir = tmp_path / "files"
    project = await seed(sqlite_db, files_dir)
    config = make_config(files_dir, database={"url": sqlite_database_url})
    out = tmp_path / "归档.zip"
    assert await archive_command(config, project.code.lower(), out) == 0
    captured = capsys.readouterr()
    assert f"已生成项目归档：{out}" in captured.out and "个文件" in captured.out
    assert captured.err.count("\r[") >= 5 and "#" * 30 in captured.err and captured.err.endswith("\n")
    assert "警告：文件缺失" not in captured.err
    assert zipfile.ZipFile(out).testzip() is None

    assert await archive_command(config, "XM-2099-999", out) == 1
    assert "未找到项目「XM-2099-999」" in capsys.readouterr().err


def test_the_cli_knows_the_archive_command(capsys) -> None:
    try:
        cli_main(["archive", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "项目编号" in capsys.readouterr().out
