"""Exceptions raised to the harness user (never sent over the wire)."""


class SandboxError(Exception):
    """A harness action that a real DingTalk client could not perform, or names nobody."""
