"""A protocol-faithful local DingTalk: Stream gateway, OpenAPI, approvals, fault injection.

Imports nothing from the bot's packages. Entry points:
  sandbox.harness.Sandbox     the emulator in a background thread, for tests
  sandbox.emulator.Emulator   the emulator itself (runs on the caller's loop)
  python -m sandbox           the emulator alone, for manual runs
"""

from .config import EmulatorConfig
from .emulator import Emulator, SandboxError
from .harness import Sandbox
from .world import World

__all__ = ["Emulator", "EmulatorConfig", "Sandbox", "SandboxError", "World"]
