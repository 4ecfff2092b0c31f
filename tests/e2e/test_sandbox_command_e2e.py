"""``dingpm sandbox`` on a fresh data directory: starts, prints the chat page's URL and the 看板's, answers 帮助 sent
through the page's own API, has the 看板 as the workbench's app, and stops cleanly on Ctrl-C (SIGINT)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

pytestmark = [pytest.mark.timeout(90)]

REPO = Path(__file__).resolve().parent.parent.parent
PAGE_LINE = re.compile(r"聊天页面：(http://\S+/chat)")
DASHBOARD_LINE = re.compile(r"项目看板：(http://\S+/)")


async def read_until(stream: asyncio.StreamReader, pattern: re.Pattern[str], timeout: float) -> tuple[re.Match, str]:
    seen: list[str] = []
    async with asyncio.timeout(timeout):
        while True:
            line = await stream.readline()
            if not line:
                raise AssertionError("dingpm sandbox exited early:\n" + "".join(seen))
            text = line.decode("utf-8", errors="replace")
            seen.append(text)
            matched = pattern.search(text)
            if matched:
                return matched, "".join(seen)


async def test_dingpm_sandbox_starts_on_a_fresh_data_dir_and_answers_help(tmp_path):
    data_dir = tmp_path / "sandbox-data"
    stderr = open(tmp_path / "stderr.log", "wb")  # noqa: SIM115 - handed to the child
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "sandbox", "--port", "0", "--data-dir", str(data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=stderr, cwd=str(REPO), env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    stderr.close()
    try:
        matched, banner = await read_until(process.stdout, PAGE_LINE, timeout=30)
        page = matched.group(1)
        dashboard = (await read_until(process.stdout, DASHBOARD_LINE, timeout=5))[0].group(1)
        api = page.removesuffix("/chat") + "/sandbox/api"
        assert (data_dir / "dingpm.db").exists()  # the bot created and migrated its SQLite database itself
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
            async with http.get(page) as resp:
                assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]
            async with http.get(f"{api}/conversations", params={"user": "wangjianguo"}) as resp:
                conversations = (await resp.json())["conversations"]
            group = next(c for c in conversations if c["type"] == "group")
            # Deliverables are submitted by dropping the file in the project group: the page must offer it.
            assert group["canSendFile"] is True
            async with http.post(f"{api}/messages", json={"user": "wangjianguo", "conversation": group["id"],
                                                          "text": "帮助"}) as resp:
                assert resp.status == 200, await resp.text()
                after = (await resp.json())["message"]["seq"]
            answer = None
            async with asyncio.timeout(20):
                while answer is None:  # long-poll: the server holds each request until something new arrives
                    async with http.get(f"{api}/updates", params={"user": "wangjianguo", "after": str(after),
                                                                  "wait": "10"}) as resp:
                        update = await resp.json()
                    after = update["last"]
                    answer = next((m for m in update["messages"] if m["direction"] == "out"), None)
        # With the bot's cards loaded, 帮助 answers as the help card (its categories fill in examples).
        assert answer["msgtype"] == "interactiveCard" and "命令一览" in answer["card"]["data"]["intro"]
        assert answer["conversationId"] == group["id"]

        # The 看板 is the organization's workbench app, opened for the chosen person; ?user= works only here.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20),
                                         cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(f"{api}/apps", params={"user": "liuqiang"}) as resp:
                apps = (await resp.json())["apps"]
            assert any((app["launchUrl"] or "").startswith(dashboard + "?corpid=ding") for app in apps), apps
            async with http.get(dashboard, params={"user": "liuqiang"}) as resp:
                board = await resp.text()
            assert resp.status == 200 and "项目组合" in board and "刘强" in board
    except BaseException:
        print((tmp_path / "stderr.log").read_text(errors="replace")[-3000:])
        raise
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)  # what Ctrl-C does
    rest = await asyncio.wait_for(process.stdout.read(), 30)
    code = await asyncio.wait_for(process.wait(), 30)
    assert code == 0, (tmp_path / "stderr.log").read_text(errors="replace")[-3000:]
    assert "沙箱已停止" in rest.decode("utf-8")
    assert "dingpm 沙箱已启动" in banner
