"""Typed errors a service or a handler raises for mistakes the user can fix.

They are the domain's vocabulary, so services raise them without knowing the chat; the kernel's dispatcher is the
one error boundary: it turns each of these into a friendly Chinese reply and anything else into an apology with a
trace id. Messages are Chinese and, where input was wrong, show the right usage.
"""

from __future__ import annotations

from collections.abc import Sequence


class UserError(Exception):
    """A problem the user can fix; ``message`` is shown to them as is."""

    outcome = "user_error"  # the value in the per-message log line

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def reply_text(self) -> str:
        return self.message


class UsageError(UserError):
    """The command was written wrongly. The dispatcher fills in the usage and examples of the matched command."""

    outcome = "usage_error"

    def __init__(self, problem: str, *, usage: str | None = None, examples: Sequence[str] = ()) -> None:
        super().__init__(problem)
        self.problem = problem
        self.usage = usage
        self.examples = tuple(examples)

    def with_usage(self, usage: str, examples: Sequence[str]) -> UsageError:
        """A copy naming the command's usage, unless the raiser already chose one."""
        if self.usage is not None:
            return self
        return type(self)(self.problem, usage=usage, examples=examples)

    def reply_text(self) -> str:
        lines = [self.problem]
        if self.usage:
            lines.append(f"用法：{self.usage}")
        if self.examples:
            lines.append(f"例如：{self.examples[0]}")
        return "\n".join(lines)


class PermissionDenied(UserError):
    """The sender's role does not allow this; the message names the role needed and the sender's own."""

    outcome = "denied"


class NotFound(UserError):
    """Something the user named does not exist (a project code, an issue number)."""

    outcome = "not_found"


class Conflict(UserError):
    """The request clashes with the current state (already bound, already closed, phase not finished)."""

    outcome = "conflict"


class RemoteError(Exception):
    """A call to another system (DingTalk) failed; ``code`` and ``message`` are what it answered.

    The transport's errors (``bot.dingtalk.errors``) are these, so a service answers about a failure (not configured,
    refused, unavailable) without knowing the transport, and a test double raises the same types.
    """

    code: str
    message: str


class RemoteRefusal(RemoteError):
    """The other system refused the request itself (a wrong parameter, an unknown id): sending it again cannot help."""
