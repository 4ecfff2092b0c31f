"""User text made inert: markdown that shows it literally, spreadsheet cells that never compute it.

The markdown checks render through markdown-it (CommonMark with GitHub's autolinks, strike-through and tables), a
renderer we did not write, so "no link" means what a real markdown client would do; the sandbox page's own
renderer is checked in the browser test (tests/sandbox/test_web_page.py).
"""

from __future__ import annotations

import csv
import html
import io
import re
import zipfile

import openpyxl
import pytest
from markdown_it import MarkdownIt

from reports.user_text import ZERO_WIDTH, TextCsvWriter, csv_cell, keep_as_text, md_literal

RENDERER = MarkdownIt("commonmark", {"linkify": True, "html": True}).enable(["linkify", "strikethrough", "table"])

PAYLOADS = [
    "[官方补偿链接](http://evil.example/phish)",
    "![二维码](http://evil.example/qr.png)",
    "# 紧急通知\n## 请点击",
    "@所有人 今晚停机 @all",
    "**重要** *斜体* _强调_ __粗__ ~~删除~~ `code`",
    '<a href="http://evil.example">点我</a><img src=x onerror=alert(1)><font color=red>红</font>',
    "详情见 http://evil.example/x 或 www.evil.com/login 或 evil.com/pay",
    "联系 boss@evil.com 或 mailto:boss@evil.com",
    "第一行\n> 引用\n- 列表\n1. 编号\n    代码块\n---\n===\n```\nfence\n```",
    "[参考]: http://evil.example\n[参考]",
    "<http://evil.example/auto>",
    "a | b\n--- | ---\nc | d",
    "&lt;b&gt; &#x41; 反斜杠\\[x](http://e.com)",
    "=cmd|' /C calc'!A0",
]
NO_MARKUP = re.compile(r"<(?!/?p>|br ?/?>)[a-z/!]", re.IGNORECASE)  # any tag but the paragraph and line breaks


def _visible(rendered: str) -> str:
    text = re.sub(r"<[^>]+>", "", rendered)
    return html.unescape(text).replace(ZERO_WIDTH, "")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markdown_shows_user_text_literally(payload):
    rendered = RENDERER.render(md_literal(payload))
    assert not NO_MARKUP.search(rendered), rendered
    # It reads as typed: only the three full-width look-alikes differ, and the lines lose their indentation.
    expected = "\n".join(line.lstrip() for line in payload.translate(str.maketrans("*`~", "＊｀～")).split("\n"))
    assert " ".join(_visible(rendered).split()) == " ".join(expected.split())


def test_markdown_inside_the_bots_own_markup():
    """As the bot uses it: user text between its heading, emphasis and list markers, the bot's link still live."""
    name = "**[项目](http://evil.example)** #1\n# 标题 @所有人"
    text = f"#### {md_literal(name)}\n- 负责人：{md_literal('_张三_')}\n\n[在钉钉中查看审批](https://aflow.dingtalk.com/x)"
    rendered = RENDERER.render(text)
    assert rendered.count("<h4>") == 1 and "<h1>" not in rendered
    assert rendered.count("<a ") == 1 and 'href="https://aflow.dingtalk.com/x"' in rendered
    assert "<strong>" not in rendered and "<em>" not in rendered
    assert "@\u200b所有人" in rendered


def test_markdown_edge_values():
    assert md_literal(None) == "" and md_literal("") == ""
    assert md_literal("智慧工厂MES 二期") == "智慧工厂MES 二期"  # plain text is untouched
    assert md_literal("v2.3 合同.pdf 3.5%") == "v2.3 合同.pdf 3.5%"
    assert md_literal(42) == "42"
    # The zero-width spaces are dropped when the text is typed back into a command.
    from bot.args import normalize_text
    typed = "报表_导出 见 http://a.com/x"
    assert normalize_text(md_literal(typed)) == typed


FORMULAS = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://evil.example","点我")', "+1+1", "-2+3", "@SUM(A1:A2)",
            "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("value", FORMULAS)
def test_xlsx_cells_stay_text(value, tmp_path):
    wb = openpyxl.Workbook()
    cell = keep_as_text(wb.active.cell(row=1, column=1, value=value))
    assert cell.data_type == "s"
    path = tmp_path / "t.xlsx"
    wb.save(path)
    sheet_xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml
    again = openpyxl.load_workbook(path).active["A1"]
    assert again.value == value and again.data_type == "s" and again.quotePrefix


def test_xlsx_leaves_ordinary_cells_alone():
    wb = openpyxl.Workbook()
    plain = keep_as_text(wb.active.cell(row=1, column=1, value="登录页面空白"))
    number = keep_as_text(wb.active.cell(row=2, column=1, value=-3))
    assert (plain.data_type, plain.quotePrefix) == ("s", False)
    assert (number.data_type, number.value) == ("n", -3)


def test_csv_cells_get_an_apostrophe():
    buf = io.StringIO()
    TextCsvWriter(buf).writerow([*FORMULAS, "普通文字", 5, None])
    row = next(csv.reader(io.StringIO(buf.getvalue(), newline="")))
    assert row[: len(FORMULAS)] == ["'" + v for v in FORMULAS]
    assert row[len(FORMULAS):] == ["普通文字", "5", ""]
    assert csv_cell(-1) == -1 and csv_cell("a=b") == "a=b"
