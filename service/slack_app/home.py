"""The App Home tab: the digests of the channels the user is in, each with its buttons.

Edit (opens the modal), Pause / Resume, Send a preview now (ephemeral, to the user only) and
Unsubscribe (confirmed first). The tab is published again (views.publish) after each change.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View
from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session, selectinload

from service.channels.slack_blocks import clip, escape
from service.config import Settings
from service.models import Subscription
from service.slack_app.client import NotInstalled, user_channels, workspace_client
from service.subscription import describe_schedule

log = logging.getLogger("paperboy.slack")
MAX_VIEW_BLOCKS = 100  # Slack's limit for a Home tab (and a modal)
PER_SUBSCRIPTION = 3  # section, buttons, divider
EDIT, PAUSE, RESUME, PREVIEW, UNSUBSCRIBE = (
    "home_edit",
    "home_pause",
    "home_resume",
    "home_preview",
    "home_unsubscribe",
)
HOME_ACTIONS = frozenset({EDIT, PAUSE, RESUME, PREVIEW, UNSUBSCRIBE})


def channel_subscriptions(
    session: Session, channels: Sequence[str], team_id: str | None
) -> list[Subscription]:
    """The live Slack subscriptions of these channels in this workspace, oldest first."""
    if not channels:
        return []
    stmt = (
        select(Subscription)
        .where(
            Subscription.channel == "slack",
            Subscription.status != "unsubscribed",
            Subscription.address.in_(list(channels)),
            or_(Subscription.slack_team_id == team_id, Subscription.slack_team_id.is_(None)),
        )
        .options(selectinload(Subscription.profile))
        .order_by(Subscription.id)
    )
    return list(session.scalars(stmt))


def home_view(subs: Sequence[Subscription]) -> View:
    """The Home tab for these subscriptions (at most what fits in Slack's 100 blocks)."""
    blocks: list[Block] = [
        HeaderBlock(block_id="home-header", text="Paper digests of your channels"),
        ContextBlock(
            block_id="home-help",
            elements=[MarkdownTextObject(text="Type `/paperboy` in a channel to set up a digest there.")],
        ),
        DividerBlock(),
    ]
    room = (MAX_VIEW_BLOCKS - len(blocks) - 1) // PER_SUBSCRIPTION
    if not subs:
        blocks.append(
            SectionBlock(block_id="home-empty", text="None of your channels has a paperboy digest yet.")
        )
    for sub in subs[:room]:
        blocks.extend(_subscription_blocks(sub))
    if len(subs) > room:
        more = f"…and {len(subs) - room} more; `/paperboy list` in a channel shows its own."
        blocks.append(ContextBlock(block_id="home-more", elements=[MarkdownTextObject(text=more)]))
    return View(type="home", callback_id="paperboy-home", blocks=blocks)


def _subscription_blocks(sub: Subscription) -> list[Block]:
    state = "paused" if sub.paused else "active"
    interests = escape(", ".join(map(str, sub.interests or [])))
    text = f"*<#{escape(sub.address)}>* · #{sub.id} · {state}\n*{interests}*"
    text += f"\n{escape(describe_schedule(sub))}, at most {sub.max_papers} papers"
    if sub.needs_attention:
        text += f"\n:warning: {escape(sub.needs_attention[:300])}"
    value = str(sub.id)
    toggle = (
        ButtonElement(text="Resume", action_id=RESUME, value=value, style="primary")
        if sub.paused
        else ButtonElement(text="Pause", action_id=PAUSE, value=value)
    )
    unsubscribe = ButtonElement(
        text="Unsubscribe",
        action_id=UNSUBSCRIBE,
        value=value,
        style="danger",
        confirm=ConfirmObject(
            title="Stop this digest?",
            text=clip(f"No more digests on {', '.join(map(str, sub.interests or []))} in this channel.", 300),
            confirm="Unsubscribe",
            deny="Keep it",
        ),
    )
    return [
        SectionBlock(block_id=f"sub-{sub.id}", text=MarkdownTextObject(text=clip(text, 3000))),
        ActionsBlock(
            block_id=f"sub-actions-{sub.id}",
            elements=[
                ButtonElement(text="Edit", action_id=EDIT, value=value),
                toggle,
                ButtonElement(text="Send a preview now", action_id=PREVIEW, value=value),
                unsubscribe,
            ],
        ),
        DividerBlock(),
    ]


def publish_home(
    settings: Settings, engine: Engine, team_id: str | None, enterprise_id: str | None, user_id: str
) -> None:
    """Publish the user's Home tab; a Slack error is logged (the next opening tries again)."""
    if not user_id:
        return
    try:
        with Session(engine) as session:
            client = workspace_client(session, settings, team_id, enterprise_id)
            channels = user_channels(client, user_id)
            view = home_view(channel_subscriptions(session, channels, team_id))
        client.views_publish(user_id=user_id, view=view)
    except (NotInstalled, SlackApiError, OSError) as exc:
        log.warning("slack: App Home for %s not published: %s", user_id, type(exc).__name__)
