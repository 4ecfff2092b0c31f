"""Process logging: one line per record, to stderr, with secrets scrubbed.

The code never logs a secret on purpose (the transport leaves tokens and webhook URLs out of its lines), but a
library's exception text or a debug line could still carry one. ``SecretFilter`` is the last line of defence: it
replaces the configured AppSecret, database password, access tokens and the credential parts of sessionWebhook URLs
in every record before any handler formats it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

from sqlalchemy.engine import make_url

from bot.config import Config

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "******"
# Query parameters that carry credentials: access_token (old API), session (sessionWebhook), ticket (Stream).
_CREDENTIAL_PARAMS = re.compile(r"(?i)\b(access_token|session|ticket|appsecret|clientsecret)=([^&\s\"']+)")
_TOKEN_HEADER = re.compile(r"(?i)(x-acs-dingtalk-access-token['\"]?\s*[:=]\s*['\"]?)([^'\"\s,}]+)")


class SecretFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _CREDENTIAL_PARAMS.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
        return _TOKEN_HEADER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


def secrets_of(config: Config) -> list[str]:
    secrets = [config.dingtalk.client_secret]
    try:
        password = make_url(config.database.url).password
    except Exception:  # noqa: BLE001 - a URL we cannot parse has no password we could find either
        password = None
    if password:
        secrets.append(str(password))
    return secrets


def setup_logging(config: Config | None = None, *, level: str | None = None, stream=None) -> SecretFilter:
    """Configure the root logger once for the process (the CLI calls it; tests leave logging to pytest)."""
    chosen = level or (config.logging.level if config is not None else "INFO")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    secret_filter = SecretFilter(secrets_of(config) if config is not None else ())
    handler.addFilter(secret_filter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(chosen)
    # Libraries that narrate every request at INFO would drown the one line per message.
    for noisy in ("aiohttp.access", "websockets", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(chosen)))
    return secret_filter
