"""The nightly clean-up of staged files: expired pending files leave the disk, nothing else does."""

from __future__ import annotations

import os
from datetime import UTC, timedelta
from pathlib import Path

from bot.scheduler import RunOutcome, Scheduler
from handlers import intake_cleanup
from storage.models import DeliverableVersion, PendingFile, PendingKind
from storage.repo import add_pending

from .conftest import Chat, new_project


def staged(chat: Chat) -> set[str]:
    staging = chat.files_dir / ".incoming"
    return {p.name for p in staging.iterdir()} if staging.exists() else set()


def touch(path: Path, data: bytes, chat: Chat, age: timedelta) -> Path:
    """A file last written ``age`` before the chat's (frozen) now."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    when = (chat.clock.now().replace(tzinfo=UTC) - age).timestamp()
    os.utime(path, (when, when))
    return path


async def run_cleanup(chat: Chat) -> RunOutcome:
    [result] = await Scheduler(chat.services, [intake_cleanup.jobs], owner="test").run_due()
    return result.outcome


async def test_expired_pending_files_and_their_staged_copies_are_deleted_nightly(chat_on_every_db: Chat) -> None:
    chat = chat_on_every_db
    await new_project(chat)
    await chat.send_file("engineer", "现场照片.jpg", b"\xff\xd8 never submitted")
    await chat.send_file("sales", "商务合同-盖章版.pdf", b"%PDF contract")
    assert (await chat.say("sales", "提交 商务合同")).outcome == "ok"
    [version] = await chat.rows(DeliverableVersion)
    assert len(staged(chat)) == 2 and len(await chat.rows(PendingFile)) == 2

    # A file sent in the evening of the next day is still within its day when the clean-up runs at 03:30.
    chat.clock.advance(timedelta(hours=30))  # Tuesday 16:00
    await chat.send_file("engineer", "接口说明文档.docx", b"PK\x03\x04 fresh")
    # Things the clean-up must leave alone: a row pointing outside the staging area, a file beside it, a staged file
    # nobody points to that is too young to be an orphan, and one left from a crash long ago.
    outside = touch(chat.files_dir / "keep.txt", b"not staged", chat, timedelta(days=30))
    young = touch(chat.files_dir / ".incoming" / "download-in-progress.pdf", b"%PDF", chat, timedelta(hours=1))
    touch(chat.files_dir / ".incoming" / "crash-leftover.pdf", b"%PDF", chat, timedelta(days=3))
    async with chat.db.write() as session:
        for sneaky in ("keep.txt", "../escape.txt", str(outside)):
            await add_pending(session=session, row=PendingFile(
                kind=PendingKind.FILE, conversation_id="cid-x", user_id="u", file_path=sneaky,
                created_at=chat.clock.now() - timedelta(days=2), expires_at=chat.clock.now() - timedelta(days=1)))
    escape = touch(chat.files_dir.parent / "escape.txt", b"outside files_dir", chat, timedelta(days=30))

    chat.clock.advance(timedelta(hours=12))  # Wednesday 04:00: the 03:30 run is due
    assert await run_cleanup(chat) is RunOutcome.DONE

    [left] = await chat.rows(PendingFile)  # only the file sent yesterday evening, still waiting for 「提交」
    assert left.file_name == "接口说明文档.docx"
    assert staged(chat) == {Path(left.file_path).name, young.name}
    assert (chat.files_dir / version.file_path).read_bytes() == b"%PDF contract"  # the submitted version stays
    assert outside.read_bytes() == b"not staged" and escape.read_bytes() == b"outside files_dir"
    assert "你在这里有 1 个待提交的文件" in (await chat.say("engineer", "暂存文件")).text

    # The next night the evening file has expired too.
    chat.clock.advance(timedelta(days=1))
    assert await run_cleanup(chat) is RunOutcome.DONE
    assert await chat.rows(PendingFile) == [] and staged(chat) == {young.name}
