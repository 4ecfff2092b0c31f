"""文档 <名称>: one of the standard's documents (立项申请表, 上线确认单, 验收确认单, 交接清单 …) as a Word file, filled
in with the project's data, sent in the chat. Without a name, or with one we do not know, the list of documents."""

from __future__ import annotations

from bot.args import Param
from bot.context import Context
from bot.feature import Feature
from bot.incoming import Incoming
from bot.roles import MEMBERS
from bot.router import Router
from domain.errors import UserError
from domain.replies import File, Markdown, Reply
from domain.report_data import gather_project_report
from handlers._project import project_middleware
from reports.documents import DOCUMENTS, MissingDocumentData, find_document
from reports.pool import render_off_loop
from reports.user_text import md_literal

router = Router("documents", title="文档")


def document_list(unknown: str | None = None) -> Markdown:
    lines = []
    if unknown:
        lines += [f"没有找到文档「{md_literal(unknown[:30])}」。", ""]
    lines.append("#### 可生成的标准文档")
    for spec in DOCUMENTS.values():
        also = f"（也可写：{'、'.join(spec.aliases[:2])}）" if spec.aliases else ""
        lines.append(f"- **{spec.name}**：{spec.description}{also}")
    lines += ["", "发送「文档 名称」生成，例如：文档 项目立项申请表"]
    return Markdown("标准文档", "\n".join(lines))


@router.command(
    "文档",
    summary="生成规范中的标准文档（Word），已填好本项目信息，如 项目立项申请表、上线确认单、项目验收确认单",
    examples=("文档 项目立项申请表", "文档 验收确认单", "文档"),
    params=(Param.text("名称", max_length=50, help="文档名称，不写则列出全部可生成的文档"),),
    roles=MEMBERS,
    needs_project=True,
)
async def send_document(incoming: Incoming, ctx: Context) -> Reply:
    name = ctx.args.text("名称")
    spec = find_document(name) if name else None
    if spec is None:
        return document_list(name)
    data = await gather_project_report(session=ctx.session, project=ctx.project, today=ctx.today(),
                                       calendar=ctx.services.calendar, tz=ctx.config.tz,
                                       company_name=ctx.config.organization.company_name)
    try:
        payload = await render_off_loop(spec, data)
    except MissingDocumentData as exc:
        raise UserError(str(exc)) from None
    return File(spec.file_name(data), data=payload)


feature = Feature("documents", router=router, middleware=(project_middleware,))

__all__ = ["feature", "document_list", "router", "send_document"]
