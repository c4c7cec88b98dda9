"""Installations of the Slack app: slack_sdk's SQLAlchemy stores on paperboy's tables, tokens sealed.

One installation per workspace (or per enterprise grid org for an org-wide install). The bot token,
refresh tokens and webhook URL are sealed with service.secrets before slack_sdk writes the row and
unsealed when it reads one, so the database never holds a usable token. A workspace that uninstalls
the app (or revokes its bot token) loses its stored tokens and its subscriptions are paused with the
reason, which `paperboy status` shows.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
import time
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from slack_sdk.web import WebClient
from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.orm import Session

from service.config import Settings
from service.models import Subscription, slack_bots, slack_installations, slack_oauth_states, utcnow
from service.secrets import SecretError, seal, unseal
from service.subscription import set_paused

log = logging.getLogger("paperboy.slack")
QUIET = logging.Logger("paperboy.slack.oauth", level=logging.CRITICAL + 1)  # would log tokens
SEALED_FIELDS = (
    "bot_token",
    "bot_refresh_token",
    "user_token",
    "user_refresh_token",
    "incoming_webhook_url",
)
UNINSTALLED = "Slack app uninstalled from workspace {team}"


def client_id(settings: Settings) -> str:
    return settings.slack_client_id or "paperboy"


class InstallationStore(SQLAlchemyInstallationStore):
    """slack_sdk's store, on the Alembic-managed tables, with every token sealed at rest."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        super().__init__(client_id=client_id(settings), engine=engine, logger=QUIET)
        self.installations, self.bots = slack_installations, slack_bots
        self.settings = settings

    def create_tables(self) -> None:  # pragma: no cover - Alembic creates them
        raise RuntimeError("the Slack tables are created by `paperboy db upgrade`")

    def _sealed(self, entity: Any) -> Any:
        sealed = copy.copy(entity)
        for name in SEALED_FIELDS:
            value = getattr(sealed, name, None)
            if value:
                setattr(sealed, name, seal(value, self.settings))
        return sealed

    def _unsealed(self, entity: Any) -> Any:
        for name in SEALED_FIELDS:
            value = getattr(entity, name, None)
            if value:
                try:
                    setattr(entity, name, unseal(value, self.settings).reveal())
                except SecretError:
                    log.warning("a stored Slack token cannot be decrypted (SECRET_KEY changed?)")
                    setattr(entity, name, None)
        return entity

    def save(self, installation: Installation) -> None:
        # One installation per workspace (or org): a reinstall replaces the earlier rows, so no older
        # token lingers sealed in the database (slack_sdk alone would keep each install as history).
        self.delete_installation(enterprise_id=installation.enterprise_id, team_id=installation.team_id)
        self.delete_bot(enterprise_id=installation.enterprise_id, team_id=installation.team_id)
        super().save(self._sealed(installation))

    def save_bot(self, bot: Bot) -> None:
        super().save_bot(self._sealed(bot) if not _looks_sealed(bot.bot_token) else bot)

    def build_installation_entity(self, row: Any) -> Installation:  # type: ignore[override]
        return self._unsealed(SQLAlchemyInstallationStore.build_installation_entity(row))  # type: ignore[no-any-return]

    def build_bot_entity(self, row: Any) -> Bot:  # type: ignore[override]
        return self._unsealed(SQLAlchemyInstallationStore.build_bot_entity(row))  # type: ignore[no-any-return]


def _looks_sealed(token: str | None) -> bool:
    # save() hands slack_sdk an already sealed copy, whose to_bot() reaches save_bot() again.
    return bool(token) and not str(token).startswith("xox")


class OAuthStateStore(SQLAlchemyOAuthStateStore):
    """slack_sdk's OAuth state store on the Alembic-managed table (states live 10 minutes)."""

    def __init__(self, engine: Engine, expiration_seconds: int = 600) -> None:
        super().__init__(expiration_seconds=expiration_seconds, engine=engine, logger=QUIET)
        self.oauth_states = slack_oauth_states


# --- which workspaces paperboy knows ----------------------------------------------------------


def installed(session: Session, settings: Settings, team_id: str | None, enterprise_id: str | None) -> bool:
    """True when the app holds a bot token for this workspace (or its org-wide install)."""
    c = slack_bots.c
    matches = []
    if team_id:
        matches.append(c.team_id == team_id)
    if enterprise_id:
        matches.append(and_(c.enterprise_id == enterprise_id, c.is_enterprise_install.is_(True)))
    if not matches:
        return False
    stmt = (
        select(c.id)
        .where(c.client_id == client_id(settings), c.bot_token.is_not(None), or_(*matches))
        .limit(1)
    )
    return session.execute(stmt).first() is not None


def known_workspace(
    session: Session, settings: Settings, team_id: str | None, enterprise_id: str | None
) -> bool:
    """A request may come from this workspace: an installation, or the one SLACK_BOT_TOKEN serves."""
    if team_id and team_id == legacy_team(settings):
        return True
    return installed(session, settings, team_id, enterprise_id)


class WorkspaceMemory:
    """Workspaces found installed, remembered briefly (one per app), so that a burst of requests
    does not cost a query each. An uninstall event forgets the workspace at once in the process that
    handles it; other processes remember it for `ttl_s` at most, and its tokens are gone already."""

    def __init__(self, ttl_s: float = 30.0) -> None:
        self.ttl_s = ttl_s
        self._until: dict[tuple[str | None, str | None], float] = {}
        self._lock = threading.Lock()

    def knows(self, team_id: str | None, enterprise_id: str | None) -> bool:
        with self._lock:
            return self._until.get((team_id, enterprise_id), 0.0) > time.monotonic()

    def remember(self, team_id: str | None, enterprise_id: str | None) -> None:
        with self._lock:
            if len(self._until) > 10_000:
                self._until.clear()
            self._until[(team_id, enterprise_id)] = time.monotonic() + self.ttl_s

    def forget(self, team_id: str | None, enterprise_id: str | None) -> None:
        with self._lock:
            for key in list(self._until):
                if (team_id and key[0] == team_id) or (enterprise_id and key[1] == enterprise_id):
                    del self._until[key]


_legacy: dict[str, str] = {}
_legacy_lock = threading.Lock()


def legacy_team(settings: Settings) -> str | None:
    """The workspace of SLACK_BOT_TOKEN: SLACK_TEAM_ID, else asked once of Slack (auth.test)."""
    if settings.slack_team_id:
        return settings.slack_team_id
    if settings.slack_bot_token is None or not settings.slack_bot_token.get_secret_value():
        return None
    token = settings.slack_bot_token.get_secret_value()
    key = hashlib.sha256(f"{settings.slack_api_url}\0{token}".encode()).hexdigest()
    with _legacy_lock:
        if key in _legacy:
            return _legacy[key]
    client = WebClient(token=token, base_url=api_base(settings), timeout=5, logger=QUIET, retry_handlers=[])
    try:
        team = str(client.auth_test().get("team_id") or "")
    except (SlackApiError, OSError, ValueError) as exc:
        log.warning("slack: cannot tell SLACK_BOT_TOKEN's workspace (auth.test): %s", type(exc).__name__)
        return None
    if team:
        with _legacy_lock:
            _legacy[key] = team
    return team or None


def api_base(settings: Settings) -> str:
    url = settings.slack_api_url
    return url if url.endswith("/") else url + "/"


def bot_token(
    session: Session, settings: Settings, team_id: str | None, enterprise_id: str | None
) -> str | None:
    """The bot token to act in this workspace with: its installation's (newest), else SLACK_BOT_TOKEN."""
    c = slack_bots.c
    matches = []
    if team_id:
        matches.append(c.team_id == team_id)
    if enterprise_id:
        matches.append(and_(c.enterprise_id == enterprise_id, c.is_enterprise_install.is_(True)))
    if matches:
        row = (
            session.execute(
                select(slack_bots)
                .where(c.client_id == client_id(settings), c.bot_token.is_not(None), or_(*matches))
                .order_by(c.team_id.is_(None), c.installed_at.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        if row is not None:
            try:
                return unseal(row["bot_token"], settings).reveal()
            except SecretError:
                log.warning("slack: the bot token of workspace %s cannot be decrypted", team_id)
                return None
    if settings.slack_bot_token is None or not settings.slack_bot_token.get_secret_value():
        return None
    if team_id and team_id != legacy_team(settings):
        return None  # SLACK_BOT_TOKEN serves its own workspace only
    return settings.slack_bot_token.get_secret_value()


# --- uninstall ---------------------------------------------------------------------------------


def remove_workspace(
    session: Session, settings: Settings, team_id: str | None, enterprise_id: str | None, why: str
) -> int:
    """Delete the workspace's stored tokens and pause its subscriptions; how many were paused."""
    for table in (slack_bots, slack_installations):
        c = table.c
        session.execute(
            table.delete().where(
                c.client_id == client_id(settings), c.team_id == team_id, c.enterprise_id == enterprise_id
            )
        )
    workspace = _workspace_filter(team_id, enterprise_id)
    if workspace is None:
        return 0
    reason = f"{UNINSTALLED.format(team=team_id or enterprise_id)} ({why}, {utcnow():%Y-%m-%d %H:%M} UTC):"
    reason += " reinstall it with Add to Slack, then resume"
    result = session.execute(
        update(Subscription)
        .where(workspace, Subscription.status != "unsubscribed")
        .values(paused=True, needs_attention=reason, next_digest_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def resume_workspace(session: Session, team_id: str | None, enterprise_id: str | None) -> int:
    """After a reinstall: resume the subscriptions an uninstall paused (not those paused by people)."""
    workspace = _workspace_filter(team_id, enterprise_id)
    if workspace is None:
        return 0
    subs = session.scalars(
        select(Subscription).where(
            workspace,
            Subscription.status != "unsubscribed",
            Subscription.needs_attention.startswith("Slack app uninstalled"),
        )
    ).all()
    for sub in subs:
        set_paused(sub, False)
    session.flush()
    return len(subs)


def _workspace_filter(team_id: str | None, enterprise_id: str | None) -> Any:
    if team_id:
        return and_(Subscription.channel == "slack", Subscription.slack_team_id == team_id)
    if enterprise_id:
        return and_(Subscription.channel == "slack", Subscription.slack_enterprise_id == enterprise_id)
    return None
