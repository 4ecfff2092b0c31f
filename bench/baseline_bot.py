"""The baseline: a bot written the way the dingtalk-stream SDK's own examples do it.

``python -m bench.baseline_bot spec.json`` (``DINGTALK_OPENAPI_ENDPOINT`` points at the emulator before the SDK is
imported). A ``ChatbotHandler`` subclass whose ``process`` does the command's database work synchronously with the
standard ``sqlite3`` module and answers with the SDK's blocking ``reply_text`` / ``reply_markdown``; files are fetched
with the SDK's blocking ``get_image_download_url`` and ``requests.get``. The client runs with the SDK's own
``start_forever``. So every network round trip and every SQL statement blocks the event loop, and the ACK goes out
only after the handler returns -- exactly the pattern ``shared/reference/dingtalk-platform.md`` §12 warns about.

The SQL per command mirrors what our handlers read and write for the same command (the project by conversation, the
sender's roles, the lists shown, the register/version/pending-file rows, the audit row, the user's last project);
what it leaves out is our kernel's own bookkeeping (inbox and outbox rows), which is the point of the comparison.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sqlite3
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dingtalk_stream  # noqa: E402 - the environment is set by the bench before this process starts
import requests
from dingtalk_stream import AckMessage, ChatbotMessage

NOW = lambda: datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")  # noqa: E731


class BaselineHandler(dingtalk_stream.ChatbotHandler):
    def __init__(self, db_path: str, files_dir: Path) -> None:
        super().__init__()
        self.db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.counts = {"statements": 0, "transactions": 0, "messages": 0}
        self._in_transaction = False
        self.db.set_trace_callback(self._count)
        self.files_dir = files_dir
        files_dir.mkdir(parents=True, exist_ok=True)

    def _count(self, statement: str) -> None:
        """The bench's statements and transactions per message (autocommit: a statement outside BEGIN is one)."""
        verb = statement.lstrip()[:8].upper()
        if verb.startswith("BEGIN"):
            self._in_transaction = True
            self.counts["transactions"] += 1
        elif verb.startswith(("COMMIT", "ROLLBACK")):
            self._in_transaction = False
        else:
            self.counts["statements"] += 1
            if not self._in_transaction:
                self.counts["transactions"] += 1

    # ---- the SDK entry point ---------------------------------------------------------------------------------

    async def process(self, callback: dingtalk_stream.CallbackMessage):  # type: ignore[override]
        incoming = ChatbotMessage.from_dict(callback.data)
        self.counts["messages"] += 1
        try:
            if incoming.message_type == "file":
                self.on_file(incoming, callback.data.get("content") or {})
            else:
                self.on_text(incoming, (incoming.text.content if incoming.text else "").strip())
        except Exception as exc:  # noqa: BLE001 - answer something, as a simple bot would
            self.logger.exception("baseline handler failed")
            self.reply_text(f"出错了：{exc}", incoming)
        return AckMessage.STATUS_OK, "OK"

    # ---- commands --------------------------------------------------------------------------------------------

    def project(self, incoming: ChatbotMessage) -> tuple[Any, ...] | None:
        return self.db.execute(
            "SELECT id, code, name, customer, status, current_phase, pm_user_id FROM projects "
            "WHERE internal_conversation_id = ? OR client_conversation_id = ?",
            (incoming.conversation_id, incoming.conversation_id)).fetchone()

    def roles(self, project_id: int, user_id: str) -> set[str]:
        return {r for (r,) in self.db.execute("SELECT role FROM project_members WHERE project_id = ? AND user_id = ?",
                                              (project_id, user_id))}

    def names(self, user_ids: list[str]) -> dict[str, str]:
        ids = sorted({u for u in user_ids if u})
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return dict(self.db.execute(f"SELECT user_id, name FROM users WHERE user_id IN ({marks})", ids).fetchall())

    def remember(self, user_id: str, project_id: int) -> None:
        self.db.execute("UPDATE users SET last_project_id = ?, updated_at = ? WHERE user_id = ?",
                        (project_id, NOW(), user_id))

    def on_text(self, incoming: ChatbotMessage, text: str) -> None:
        user = incoming.sender_staff_id
        project = self.project(incoming)
        if project is None:
            self.reply_text("本群还没有绑定项目。", incoming)
            return
        project_id, code, name, customer, status, phase, pm = project
        roles = self.roles(project_id, user)
        if text.startswith("项目"):
            deliverables = self.db.execute(
                "SELECT id, seq, name, status, due_date, owner_user_id, required FROM deliverables WHERE project_id = ?",
                (project_id,)).fetchall()
            phases = self.db.execute("SELECT id, name, planned_start, planned_end FROM phases WHERE project_id = ? "
                                     "ORDER BY seq", (project_id,)).fetchall()
            members = self.db.execute("SELECT user_id, role FROM project_members WHERE project_id = ?",
                                      (project_id,)).fetchall()
            names = self.names([pm, *(d[5] for d in deliverables)])
            self.db.execute("BEGIN IMMEDIATE")
            self.remember(user, project_id)
            self.db.execute("COMMIT")
            done = sum(1 for d in deliverables if d[3] != "待提交")
            self.reply_markdown(f"{code} 概况", f"#### {code} {name}\n- 客户：{customer}\n- 状态：{status}　阶段：{phase}\n"
                                f"- 项目经理：{names.get(pm, pm)}　成员 {len(members)} 人\n"
                                f"- 进度：{done}/{len(deliverables)}\n- 阶段数：{len(phases)}", incoming)
        elif text.startswith("交付物"):
            phases = self.db.execute("SELECT id, name FROM phases WHERE project_id = ? ORDER BY seq",
                                     (project_id,)).fetchall()
            current = [p[0] for p in phases if p[1] == phase] or [p[0] for p in phases]
            marks = ",".join("?" * len(current))
            deliverables = self.db.execute(
                f"SELECT seq, name, status, due_date, owner_user_id FROM deliverables WHERE project_id = ? "
                f"AND phase_id IN ({marks}) ORDER BY seq", (project_id, *current)).fetchall()
            names = self.names([d[4] for d in deliverables])
            self.db.execute("BEGIN IMMEDIATE")
            self.remember(user, project_id)
            self.db.execute("COMMIT")
            lines = [f"- #{d[0]} {d[1]}：{d[2]}，{names.get(d[4], '未指定')}，{d[3]}" for d in deliverables]
            self.reply_markdown(f"{code} 交付物", f"#### {code} 交付物（{phase}）\n" + "\n".join(lines), incoming)
        elif text.startswith("日志") or text.startswith("问题"):
            kind = "实施日志" if text.startswith("日志") else "问题"
            body = re.sub(r"^(日志|问题\s*新增)\s*", "", text)
            if not roles:
                self.reply_text("只有项目成员可以登记。", incoming)
                return
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("SELECT id FROM projects WHERE id = ?", (project_id,)).fetchone()
            (seq,) = self.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM register_entries WHERE project_id = ? "
                                     "AND kind = ?", (project_id, kind)).fetchone()
            now = NOW()
            self.db.execute(
                "INSERT INTO register_entries (project_id, kind, seq, title, content, owner_user_id, status, "
                "created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (project_id, kind, seq, body[:120], body, user, "已记录" if kind == "实施日志" else "打开", user, now,
                 now))
            self.db.execute("INSERT INTO audit_log (actor_user_id, action, project_id, entity, entity_id, after, at) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (user, "register.add", project_id, "register_entry", f"{kind}#{seq}",
                             json.dumps({"title": body[:120]}, ensure_ascii=False), now))
            self.remember(user, project_id)
            self.db.execute("COMMIT")
            self.reply_text(f"已登记{kind}#{seq}：{body[:60]}", incoming)
        elif text.startswith("提交"):
            match = re.search(r"#(\d+)", text)
            seq = int(match.group(1)) if match else 1
            self.db.execute("BEGIN IMMEDIATE")
            pending = self.db.execute(
                "SELECT id, file_name, file_path, size FROM pending_files WHERE conversation_id = ? AND user_id = ? "
                "AND consumed_at IS NULL AND kind = 'file' ORDER BY id DESC LIMIT 1",
                (incoming.conversation_id, user)).fetchone()
            deliverable = self.db.execute("SELECT id, name FROM deliverables WHERE project_id = ? AND seq = ?",
                                          (project_id, seq)).fetchone()
            now = NOW()
            if pending is None or deliverable is None:
                self.db.execute("COMMIT")
                self.reply_text("请先发送文件，再回复「提交 交付物名称」。", incoming)
                return
            (version,) = self.db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM deliverable_versions "
                                         "WHERE deliverable_id = ?", (deliverable[0],)).fetchone()
            self.db.execute("INSERT INTO deliverable_versions (deliverable_id, version, file_path, size, original_name, "
                            "submitted_by, submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (deliverable[0], version, pending[2], pending[3], pending[1], user, now))
            self.db.execute("UPDATE deliverables SET status = '已提交', submitted_at = ?, updated_at = ? WHERE id = ?",
                            (now, now, deliverable[0]))
            self.db.execute("UPDATE pending_files SET consumed_at = ? WHERE id = ?", (now, pending[0]))
            self.db.execute("INSERT INTO audit_log (actor_user_id, action, project_id, entity, entity_id, at) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (user, "deliverable.submit", project_id, "deliverable",
                                                          str(deliverable[0]), now))
            self.remember(user, project_id)
            self.db.execute("COMMIT")
            self.reply_text(f"已提交《{deliverable[1]}》第 {version} 版。", incoming)
        else:
            self.reply_text("可用命令：项目、交付物、日志、问题 新增、提交", incoming)

    def on_file(self, incoming: ChatbotMessage, content: dict[str, Any]) -> None:
        url = self.get_image_download_url(content.get("downloadCode", ""))
        data = requests.get(url).content
        name = content.get("fileName") or "file.bin"
        path = self.files_dir / f"{uuid.uuid4().hex}-{name}"
        path.write_bytes(data)
        project = self.project(incoming)
        now = NOW()
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute(
            "INSERT INTO pending_files (kind, conversation_id, user_id, project_id, message_id, file_name, file_path, "
            "size, created_at, expires_at) VALUES ('file', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (incoming.conversation_id, incoming.sender_staff_id, project[0] if project else None, incoming.message_id,
             name, str(path), len(data), now, now))
        self.db.execute("COMMIT")
        self.reply_text(f"收到文件「{name}」（{len(data)} 字节）。回复「提交 交付物名称」即可提交。", incoming)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    logging.basicConfig(level=logging.WARNING)
    credential = dingtalk_stream.Credential(spec["client_id"], spec["client_secret"])
    client = dingtalk_stream.DingTalkStreamClient(credential)
    handler = BaselineHandler(spec["sqlite_path"], Path(spec["files_dir"]))
    client.register_callback_handler(ChatbotMessage.TOPIC, handler)

    def stop(*_: Any) -> None:  # the bench stops it with SIGTERM: leave the counts in the log first
        print("bench: sql counts " + json.dumps(handler.counts), flush=True)
        os._exit(0)  # as the default SIGTERM would: start_forever would otherwise reconnect

    signal.signal(signal.SIGTERM, stop)
    client.start_forever()


if __name__ == "__main__":
    main()
