"""What a page answers instead of itself: each becomes a Chinese error page (never a traceback)."""

from __future__ import annotations


class PageError(Exception):
    """An error page: HTTP ``status``, a title and a sentence saying what to do."""

    status = 400
    title = "请求有误"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadParameter(PageError):
    """A query parameter the page cannot use; the message names it and shows a good value."""


class NotFound(PageError):
    """No such project, or one the viewer may not see: the same answer, so a code's existence does not leak."""

    status = 404
    title = "找不到页面"

    def __init__(self, message: str = "项目不存在，或者你不是这个项目的成员。") -> None:
        super().__init__(message)


class Forbidden(PageError):
    status = 403
    title = "无法访问"


class Failure(PageError):
    """Something went wrong on our side: the page says so and gives the trace id the log has the details under."""

    status = 500
    title = "出错了"

    def __init__(self) -> None:
        super().__init__("看板出了点问题，请稍后再试；如果一直这样，请把错误编号告诉管理员。")


__all__ = ["BadParameter", "Failure", "Forbidden", "NotFound", "PageError"]
