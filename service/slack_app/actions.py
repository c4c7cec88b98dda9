"""What paperboy's buttons and forms in Slack do: the modal, the Home tab's buttons, the digest's
"more like this" and "edit this digest", and an unfurl's "add as a seed".

Each function runs after Slack has been answered (the web layer acknowledges first), except
`submit_modal`, whose answer carries the field errors. Whoever clicks is checked: a Home button acts
only on a subscription of a channel the user is in; digest and unfurl buttons carry signed values.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service import authors
from service.channels import slack_subscriptions as channel_subs
from service.channels.slack_blocks import digest_messages, escape
from service.config import Settings
from service.digest.compose import compose_digest
from service.models import Paper, Subscription
from service.slack_app import home
from service.slack_app.client import NotInstalled, user_channels, workspace_client
from service.slack_app.modal import Where, save_submission, subscription_view, view_payload
from service.subscription import SubscriptionError, set_paused
from service.tokens import TokenError, read_token

log = logging.getLogger("paperboy.slack")
# --- the modal ---------------------------------------------------------------------------------


def open_modal(
    settings: Settings,
    engine: Engine,
    where: Where,
    trigger_id: str,
) -> None:
    """views.open the subscription modal (to edit `where.subscription_id`, or the channel's only one)."""
    try:
        with Session(engine) as session:
            sub = None
            if where.subscription_id is not None:
                sub = session.get(Subscription, where.subscription_id)
            else:
                subs = channel_subs.channel_subscriptions(session, where.channel_id)
                sub = subs[0] if len(subs) == 1 else None
            if sub is not None:
                where = Where(where.channel_id, where.team_id, where.enterprise_id, sub.id)
            view = view_payload(where, sub)
            client = workspace_client(session, settings, where.team_id, where.enterprise_id, retry_reset=True)
        client.views_open(trigger_id=trigger_id, view=view)
    except (NotInstalled, SlackApiError, OSError) as exc:
        log.warning("slack: the subscription modal did not open: %s", type(exc).__name__)


def submit_modal(
    session: Session, settings: Settings, view: dict[str, Any], team_id: str | None
) -> dict[str, str]:
    """Save a submitted modal; the errors by block id (empty: saved)."""
    where = Where.load(str(view.get("private_metadata") or ""))
    if where.team_id != team_id:  # a view of another workspace's channel
        return {"interests": "This form belongs to another workspace."}
    _, errors = save_submission(session, settings, view)
    return errors


# --- the Home tab's buttons ----------------------------------------------------------------------


def home_action(
    settings: Settings,
    engine: Engine,
    team_id: str | None,
    enterprise_id: str | None,
    user_id: str,
    action: str,
    value: str,
    trigger_id: str,
) -> None:
    """One Home tab button, for a subscription of a channel the user is in; then the tab is refreshed."""
    try:
        with Session(engine) as session, session.begin():
            # Only the edit button's calls (a read, then views.open) may be retried; others post.
            retry = action == home.EDIT
            client = workspace_client(session, settings, team_id, enterprise_id, retry_reset=retry)
            sub = session.get(Subscription, int(value)) if value.isdigit() else None
            allowed = home.channel_subscriptions(session, user_channels(client, user_id), team_id)
            if sub is None or sub not in allowed:
                log.warning("slack: %s refused: subscription %r is not in the user's channels", action, value)
                return
            if action == home.EDIT:
                where = Where(sub.address, team_id, enterprise_id, sub.id)
                view = subscription_view(where, sub)
                client.views_open(trigger_id=trigger_id, view=view)
                return
            if action in (home.PAUSE, home.RESUME):
                set_paused(sub, action == home.PAUSE)
            elif action == home.UNSUBSCRIBE:
                channel_subs.unsubscribe(session, sub.address, sub.id)
            elif action == home.PREVIEW:
                send_preview(session, client, settings, sub, user_id)
    except (NotInstalled, SlackApiError, OSError, SubscriptionError) as exc:
        log.warning("slack: %s failed: %s", action, type(exc).__name__)
        return
    home.publish_home(settings, engine, team_id, enterprise_id, user_id)


def send_preview(session: Session, client: Any, settings: Settings, sub: Subscription, user_id: str) -> None:
    """The digest the subscription would get now, shown only to this user (nothing is recorded)."""
    now = dt.datetime.now(dt.UTC)
    digest = compose_digest(session, sub, f"preview-{now:%Y-%m-%d}", now=now, settings=settings)
    message = digest_messages(digest, settings)[0]
    client.chat_postEphemeral(
        channel=sub.address, user=user_id, text="Preview: " + message.text[:2900], blocks=message.blocks
    )


# --- digest and unfurl buttons ------------------------------------------------------------------


def paper_button(session: Session, settings: Settings, value: str, channel_id: str) -> str:
    """ "More like this", "add as a seed" (service.authors.add_seed) or "follow authors"
    (service.authors.follow_for), for the digest the button came with; the reply to show the clicker."""
    try:
        claims = read_token("slack-action", value, settings=settings)
    except TokenError as exc:
        return f"Sorry: {escape(str(exc))}."
    paper = session.get(Paper, claims.extra.get("paper") or 0)
    target, follow = claims.extra.get("seed"), claims.extra.get("follow")
    if paper is None or (target is None and follow is None):
        return "Sorry: this button is not valid."
    if claims.subscription_id is not None:
        sub = session.get(Subscription, claims.subscription_id)
        subs = [sub] if sub is not None and sub.channel == "slack" and sub.status != "unsubscribed" else []
    else:  # an unfurl's button: every digest of the channel it was shown in
        subs = channel_subs.channel_subscriptions(session, str(target))
    if not subs or any(s.address != channel_id for s in subs):
        return "Sorry: this channel has no paperboy digest to add it to."
    title = escape(paper.title[:300])
    if follow is not None:
        names = authors.paper_authors_to_follow(paper)
        if not names:
            return f"*{title}* names no author to follow."
        try:
            added = [name for sub in subs for name in authors.follow_for(session, sub, names)]
        except authors.AuthorError as exc:
            return f"Sorry: {escape(str(exc))}."
        if not added:
            return f"This channel already follows {escape(', '.join(names))}."
        return f"This channel now follows {escape(', '.join(dict.fromkeys(added)))}."
    already = all(paper.id in _seeds(sub) for sub in subs)
    for sub in subs:
        authors.add_seed(session, sub, paper.id)
    if already:
        return f"*{title}* is already a seed of this channel's digest."
    return f"Added *{title}* as a seed: this channel's digest will look for more like it."


def _seeds(sub: Subscription) -> set[int]:
    chosen = set(map(str, sub.interests or ()))
    return {int(p) for i in sub.profile.interests if not chosen or i.name in chosen for p in i.seeds or ()}


def digest_edit(
    settings: Settings,
    engine: Engine,
    value: str,
    channel_id: str,
    team_id: str | None,
    enterprise_id: str | None,
    trigger_id: str,
) -> None:
    """The digest's "edit this digest" button: the modal for the subscription that sent it."""
    try:
        claims = read_token("slack-action", value, settings=settings)
    except TokenError:
        return
    if claims.subscription_id is None or claims.extra.get("edit") is not True:
        return
    with Session(engine) as session:
        sub = session.get(Subscription, claims.subscription_id)
        if sub is None or sub.address != channel_id or sub.status == "unsubscribed":
            return
    open_modal(
        settings, engine, Where(channel_id, team_id, enterprise_id, claims.subscription_id), trigger_id
    )
