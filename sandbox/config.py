"""Emulator settings.

Every default follows §13.2 of the platform reference ("Defaults for UNCONFIRMED points").
Tests usually switch server pings and periodic disconnects off and shorten the
disconnect grace period; `python -m sandbox` turns the periodic disconnect on.
The object is mutable on purpose: tests may change a value while the emulator runs
(e.g. the QPS limit), and every component reads it at the moment of use.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path


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
    # --- 待办 and H5 免登 (P2 §2, §5, §7.2; see todo.py and h5.py) ----------------------
    todo_page_size: int = 50                 # org/user todo lists per page (UNCONFIRMED)
    todo_events_on_api_changes: bool = False  # todo_task_* events also for the app's own API calls (UNCONFIRMED)
    todo_deleted_keeps_source_id: bool = False  # a deleted todo still blocks its sourceId (UNCONFIRMED)
    todo_flow_limit_per_executor: int = 0    # creates per executor per minute, then flowControlError; 0 = off
    todo_flow_limit_per_org: int = 0         # creates per org per minute, then flowControlError; 0 = off
    auth_code_ttl: float = 300.0             # 免登 codes: 5 minutes, single use
    h5_homepages: dict = field(default_factory=dict)  # app client_id or name -> homepage URL ($CORPID$ allowed)
    work_notice_daily_cap: int = 500         # 工作通知 per person per app per day (P2 §6), then silently dropped
    # --- Cards (P2 §1, §7.2) ----------------------------------------------------------
    card_templates_dir: str | Path | None = None   # card definitions (*.json), read at start; None: any id accepted
    card_template_env: str = "sandbox"       # the `templateIds` entry the emulator registers
    card_callback_timeout: float = 2.0       # an ACK later than this fails the press (emulator clock)
    card_callback_redelivery: bool = False   # True: unACKed card callbacks are redelivered like bot messages
    pin_in_ordinary_groups: bool = True      # UNCONFIRMED (§1.7): False refuses ONE_BOX in ordinary groups
    cross_org_card_callbacks: bool = True    # UNCONFIRMED (§1.8): False drops presses by other orgs' users
    card_max_data_bytes: int = 64 * 1024     # keys + values of a card's public and private data
    # --- Permissions ----------------------------------------------------------------
    missing_scopes: tuple[str, ...] = ()     # e.g. ("Card.Instance.Write",): those APIs answer 403

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
