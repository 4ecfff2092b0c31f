"""Emulator settings.

Every default follows §13.2 of the platform reference ("Defaults for UNCONFIRMED points").
Tests usually switch server pings and periodic disconnects off and shorten the
disconnect grace period; `python -m sandbox` turns the periodic disconnect on.
The object is mutable on purpose: tests may change a value while the emulator runs
(e.g. the QPS limit), and every component reads it at the moment of use.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass
class EmulatorConfig:
    # --- Stream gateway -------------------------------------------------------------
    ticket_ttl: float = 90.0                 # one-time ticket lifetime (§2.1)
    redelivery_timeout: float = 60.0         # unacked CALLBACK/EVENT frame pushed again after this
    redelivery_count: int = 1                # how many times an unacked frame is pushed again
    retention: float = 300.0                 # frames queued while the app has no connection
    ping_interval: float = 60.0              # SYSTEM ping frames; 0 = off
    periodic_disconnect: float = 0.0         # SYSTEM disconnect after a connection lived this long; 0 = off
    disconnect_close_delay: float = 10.0     # server closes the TCP connection this long after `disconnect`
    max_connections_per_app: int = 50
    freeze_max_hold: float = 600.0           # real seconds a frozen socket is kept before it is aborted
    # --- OpenAPI --------------------------------------------------------------------
    token_ttl: float = 7200.0
    session_webhook_ttl: float = 5400.0      # createAt + 5 400 000 ms
    session_webhook_per_minute: int = 0      # optional custom-robot style limit; 0 = off
    webhook_max_body: int = 20000
    msg_param_max_bytes: int = 15000
    batch_send_max_users: int = 20
    qps_limit: int = 20                      # calls per second per app per API; 0 = off
    timeout_fault_max_hold: float = 30.0     # real seconds a "timeout" fault holds a request at most
    # --- Contacts and groups (P2 §3) -------------------------------------------------
    # Departments (with their sub-departments) the app's contact permission covers; None = the
    # whole organization. Outside it the contact APIs answer 50004.
    contact_scope: tuple[int, ...] | None = None
    # UNCONFIRMED (P2 §3.5, §8 item 6): the scene-group member query is documented for scene and
    # cool-app groups only. Default: it answers for every group the robot is in; False: ordinary
    # groups answer 400 groupPermissionDenied.
    scene_group_members_any_group: bool = True
    group_members_max_results: int = 1000    # maxResults of the group member queries
    # --- Messaging ------------------------------------------------------------------
    # Users cannot send files to a bot in a group (§3.1). Our product asks people to
    # drop deliverables into the project group, so tests may allow it explicitly.
    allow_group_files: bool = False
    # An @'d person's atUsers entry carries dingtalkId (+ staffId for insiders) only, as
    # documented; True adds their unionId to every entry but the bot's (UNCONFIRMED, P1 §3.2).
    at_users_union_id: bool = False
    # --- External groups and custom robots (P1 §4, §10, §11.2; P2 §4) -----------------
    # UNCONFIRMED whether an enterprise app robot can be in an external group (外部群). True: it
    # can (so outsiders' messages are testable); False: it cannot: it hears nothing from a group
    # with external members and its sends there fail like sends to a group it is not in.
    app_robots_in_external_groups: bool = True
    custom_robot_per_minute: int = 20        # messages a minute per custom robot ...
    custom_robot_throttle: float = 600.0     # ... then refused (410100) for this long
    # --- Workflow -------------------------------------------------------------------
    terminate_min_age: float = 15.0          # an instance cannot be revoked within 15 s of its start

    extra: dict = field(default_factory=dict)

    def copy(self, **changes) -> "EmulatorConfig":
        return replace(self, **changes)

    @classmethod
    def for_tests(cls, **changes) -> "EmulatorConfig":
        """Quiet defaults for unit tests: no background pings or periodic disconnects."""
        base = cls(ping_interval=0.0, periodic_disconnect=0.0)
        return replace(base, **changes)

    @classmethod
    def for_sandbox_mode(cls, **changes) -> "EmulatorConfig":
        """What `python -m sandbox` runs with: close to the real service's rhythm."""
        base = cls(ping_interval=60.0, periodic_disconnect=7200.0)
        return replace(base, **changes)
