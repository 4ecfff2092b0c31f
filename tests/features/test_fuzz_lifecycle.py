"""Thousands of random and hostile messages through the router with every handler module and a real database:
each is answered, none raises, and none leaves a half-written state (a refused command changes no row and no file;
a command that changes rows writes its audit record with them)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from handlers import closing, deliverables, members, phases, projects, registers
from handlers._files import STAGING_DIR

from .conftest import CLIENT_GROUP, INTERNAL, OTHER_GROUP, PEOPLE, Chat, build_chat, new_project

COMMANDS = (
    "新建项目", "项目列表", "我的项目", "项目", "绑定", "成员", "成员 添加", "成员 移除", "交付物", "提交", "豁免", "计划",
    "暂存文件", "立项", "推进", "进入下一阶段", "暂停", "恢复", "问题 新增", "问题 关闭", "问题 列表", "需求 新增", "需求 完成",
    "需求 列表", "风险 新增", "风险 关闭", "风险 列表", "变更 申请", "变更 列表", "升级", "升级 列表", "日志", "下周计划",
    "会议", "验收", "复盘", "交接", "归档", "帮助", "submit", "next", "问题", "风险", "/提交", "ＸＭ", "项目 ",
)
HOSTILE = (
    "XM-2026-001", "xm-2026-001", "XM-2026-999", "XM-9999-1", "#1", "#0", "#999999", "1", "-1", "99999999999999",
    "原因:", "原因:测试", "截止:2026-02-30", "截止:2026-13-01", "截止:明天", "截止:1999-01-01", "开始:下周一",
    "结束:2026-01-01", "负责人:@王工", "项目:XM-2026-001", "项目:智慧", "项目:", "客户:某某", "类型:软件", "类型:园艺",
    "经理:@张经理", "概率:高", "影响:中", "应对:减轻", "概率:极高", "链接:https://x.example/y", "链接:javascript:alert(1)",
    "内部群", "客户群", "全部", "确认", "通知", "实施工程师", "拓展", "客户", "厨师", "@王工", "@", "@@", "＠张经理",
    "'", '"', "“未闭合", "「", "」", "key=value", "a:b:c", ":::", "'; DROP TABLE projects; --", "%", "_", "\\",
    "../../etc/passwd", "..\\..\\boot.ini", "CON", "\u200b", "\u202e反转", "\x00", "\t", "\n", "𠀀🚀", "０１２３",
    "²", "٣", "#٣", "XM-٢٠٢٦-٠٠١", "https://space.dingtalk.com/s/abc", "商务合同", "接口说明文档", "报告", "《验收汇报PPT》", "启动", "监控",
    "很" * 150, "长" * 2100,
)
SENDERS = tuple(PEOPLE)
CONVERSATIONS = (INTERNAL, CLIENT_GROUP, OTHER_GROUP, None)
FILE_NAMES = ("接口说明文档.docx", "../../x.pdf", "a.exe", "无扩展名", "照片.jpg", "CON.docx", "合同.PDF", "x" * 300 + ".pdf")


LIFECYCLE_FEATURES = (projects.feature, members.feature, deliverables.feature, phases.feature, registers.feature,
                      closing.feature)


def _examples() -> tuple[str, ...]:
    """The lifecycle commands' examples: well-formed messages, so that many go through and change state. (Every
    handler module is registered; the report renderers are left to their own tests, they are slow to fuzz.)"""
    found: list[str] = []
    for feature in LIFECYCLE_FEATURES:
        found += [example for command in feature.router.commands for example in command.examples]
    return tuple(found)


EXAMPLES = _examples()
words = st.one_of(st.sampled_from(HOSTILE), st.text(min_size=1, max_size=12))
messages = st.tuples(
    st.one_of(st.sampled_from(COMMANDS), st.sampled_from(EXAMPLES)),
    st.lists(words, max_size=4),
    st.sampled_from(SENDERS),
    st.sampled_from(CONVERSATIONS),
    st.lists(st.sampled_from(("engineer", "pm", "qa", "after_sales")), max_size=2),
    st.one_of(st.none(), st.tuples(st.sampled_from(FILE_NAMES), st.binary(max_size=64))),
)

SNAPSHOT = text(
    "SELECT (SELECT count(*) FROM audit_log), (SELECT count(*) FROM outbox), (SELECT count(*) FROM projects),"
    " (SELECT count(*) FROM project_members), (SELECT count(*) FROM register_entries),"
    " (SELECT count(*) FROM deliverable_versions), (SELECT count(*) FROM pending_files),"
    " (SELECT coalesce(max(updated_at), '') FROM deliverables), (SELECT coalesce(max(updated_at), '') FROM projects)"
)
# The directory learns every sender from every message (issue 12), so users are compared apart: a refused message
# may add its sender, and nobody else.
USERS = text("SELECT user_id, last_project_id FROM users")


async def snapshot(chat: Chat) -> tuple[tuple[object, ...], frozenset[Path], frozenset[tuple[object, ...]]]:
    async with chat.db.read() as session:
        counts = tuple((await session.exec(SNAPSHOT)).one())
        users = frozenset(tuple(row) for row in (await session.exec(USERS)).all())
    # The staging area is left out: a file a message carries is downloaded there before its command runs (the
    # features' preparer, as in production), and a copy no pending_files row points to is the nightly clean-up's.
    # What a command keeps is a row (counted above) and a file outside it.
    staging = chat.files_dir / STAGING_DIR
    files = frozenset(p for p in chat.files_dir.rglob("*") if p.is_file() and staging not in p.parents) \
        if chat.files_dir.exists() else frozenset()
    return counts, files, users


class World:
    """One chat for the whole run: state piles up across examples, as it would in a long-lived group."""

    chat: Chat | None = None


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
@given(batch=st.lists(messages, min_size=1, max_size=10))
async def test_random_and_hostile_messages(sqlite_db, tmp_path_factory, batch) -> None:
    if World.chat is None or World.chat.db is not sqlite_db:
        World.chat = build_chat(sqlite_db, tmp_path_factory.mktemp("fuzz"))
        await new_project(World.chat)
        await World.chat.say("pm", "立项")
    chat = World.chat
    for command, args, sender, conversation, mentioned, file in batch:
        before = await snapshot(chat)
        mentions = mentioned if any(w.startswith(("@", "＠")) for w in args) else []
        said = await chat.say(
            sender, " ".join([command, *args]), group=conversation, mentions=mentions,
            files=[file] if file is not None else [],
        )
        assert said.outcome != "error", said.handled
        assert said.replies, f"no answer to {command!r} {args!r}"
        after = await snapshot(chat)
        if said.outcome in ("usage_error", "denied", "not_found", "conflict", "user_error", "unknown_command",
                            "group_help", "greeting"):
            # Users may be remembered (their last project) only by commands that went through; a refused message
            # still teaches the directory its sender.
            assert after[:2] == before[:2], (command, args, said.text)
            learned = after[2] - before[2]
            assert {user_id for user_id, last in learned} <= {PEOPLE[sender].user_id}, (command, args, said.text)
            assert all(last is None for _, last in learned), (command, args, said.text)
        else:
            counts_before, counts_after = before[0], after[0]
            changed = counts_after[2:6] != counts_before[2:6]  # projects, members, registers, versions
            if changed:
                assert counts_after[0] > counts_before[0], f"{command} changed rows without an audit record"
