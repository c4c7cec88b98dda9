"""SlackChannel through the real slack-sdk against the loopback Slack server: posts, threads, errors."""

from __future__ import annotations

import logging
import socket

import pytest

from service.channels.base import DeliveryError
from service.channels.slack import SlackChannel
from service.channels.slack_errors import PERMANENT
from service.channels.slack_pacing import ChannelPacer
from service.config import Settings
from service.models import Subscription
from service.secrets import seal
from tests.slack.fake_slack import BOT_TOKEN, Answer, FakeSlack
from tests.slack.helpers import make_digest, paper_ids, parse_message


class Clock:
    """A pacer's clock and sleep that only record: no test waits for real."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


def channel_for(settings: Settings, clock: Clock | None = None, interval: float = 0.0) -> SlackChannel:
    clock = clock or Clock()
    pacer = ChannelPacer(interval, sleep=clock.sleep, monotonic=clock.monotonic)
    return SlackChannel(settings, pacer=pacer, sleep=clock.sleep)


def subscription(address: str = "C0001", secret: str | None = None, sub_id: int = 7) -> Subscription:
    return Subscription(id=sub_id, channel="slack", address=address, secret=secret)


def test_a_digest_is_posted_with_the_bot_token_and_its_ts_returned(
    slack: FakeSlack, slack_settings: Settings
) -> None:
    ts = channel_for(slack_settings).send(subscription(), make_digest(3, subscription_id=7))
    (posted,) = slack.messages()
    assert (posted.kind, posted.channel, posted.ts) == ("bot", "C0001", ts)
    assert paper_ids(parse_message(posted.payload)) == [1, 2, 3]
    assert posted.payload["unfurl_links"] is False and posted.thread_ts is None


def test_a_long_digest_is_a_parent_message_and_thread_replies(
    slack: FakeSlack, slack_settings: Settings
) -> None:
    ts = channel_for(slack_settings).send(subscription(), make_digest(30))
    parent, *replies = slack.messages()
    assert parent.ts == ts and parent.thread_ts is None
    assert len(replies) == 2 and all(reply.thread_ts == ts for reply in replies)
    shown = [pid for posted in slack.messages() for pid in paper_ids(parse_message(posted.payload))]
    assert shown == list(range(1, 31))


def test_a_stored_token_is_used_instead_of_the_workspace_token(
    slack: FakeSlack, slack_settings: Settings
) -> None:
    own = "xoxb-other-workspace-token"
    slack.tokens = {own}
    channel_for(slack_settings).send(subscription(secret=seal(own, slack_settings)), make_digest(1))
    assert len(slack.messages()) == 1
    with pytest.raises(DeliveryError) as failure:  # the workspace token is not accepted any more
        channel_for(slack_settings).send(subscription(), make_digest(1))
    assert failure.value.permanent and "invalid_auth" in str(failure.value)


@pytest.mark.parametrize(
    "code", ["channel_not_found", "not_in_channel", "invalid_auth", "account_inactive", "token_revoked"]
)
def test_errors_that_sending_again_cannot_fix_are_permanent(
    slack: FakeSlack, slack_settings: Settings, code: str
) -> None:
    slack.channel_errors["C0404"] = code
    with pytest.raises(DeliveryError) as failure:
        channel_for(slack_settings).send(subscription("C0404"), make_digest(2))
    assert failure.value.permanent and code in str(failure.value) and PERMANENT[code] in str(failure.value)
    assert slack.requests == 1 and not slack.messages()  # asked once, never again


def test_a_revoked_token_is_permanent(slack: FakeSlack, slack_settings: Settings) -> None:
    slack.revoked.add(BOT_TOKEN)
    with pytest.raises(DeliveryError, match="token_revoked") as failure:
        channel_for(slack_settings).send(subscription(), make_digest(1))
    assert failure.value.permanent


def test_a_429_is_waited_out_for_its_retry_after_then_posted(
    slack: FakeSlack, slack_settings: Settings
) -> None:
    clock = Clock()
    slack.script(Answer(status=429, retry_after=7))
    ts = channel_for(slack_settings, clock).send(subscription(), make_digest(1))
    assert clock.sleeps == [7.0] and slack.requests == 2
    assert [p.ts for p in slack.messages()] == [ts]


def test_a_retry_after_beyond_the_limit_is_left_to_the_delivery_core(
    slack: FakeSlack, slack_settings: Settings
) -> None:
    slack.script(Answer(status=429, retry_after=600))
    with pytest.raises(DeliveryError) as failure:
        channel_for(slack_settings).send(subscription(), make_digest(1))
    assert not failure.value.permanent and failure.value.retry_after == 600
    assert not slack.messages()


@pytest.mark.parametrize("answer", [Answer(status=500), Answer(status=503), Answer(drop=True)])
def test_server_errors_and_dropped_connections_are_tried_again(
    slack: FakeSlack, slack_settings: Settings, answer: Answer
) -> None:
    clock = Clock()
    slack.script(answer, answer)
    ts = channel_for(slack_settings, clock).send(subscription(), make_digest(1))
    assert clock.sleeps == [1.0, 2.0] and slack.requests == 3
    assert [p.ts for p in slack.messages()] == [ts]


def test_persistent_server_errors_are_transient_delivery_errors(
    slack: FakeSlack, slack_settings: Settings
) -> None:
    slack.script(*[Answer(status=500)] * 3)
    with pytest.raises(DeliveryError, match="HTTP 500") as failure:
        channel_for(slack_settings).send(subscription(), make_digest(1))
    assert not failure.value.permanent and slack.requests == 3


def test_an_unreachable_slack_is_transient(tmp_path: object, slack_settings: Settings) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = slack_settings.model_copy(update={"slack_api_url": f"http://127.0.0.1:{port}/api/"})
    with pytest.raises(DeliveryError, match="unreachable") as failure:
        channel_for(settings).send(subscription(), make_digest(1))
    assert not failure.value.permanent


def test_a_failing_thread_reply_does_not_repost_the_parent(
    slack: FakeSlack, slack_settings: Settings
) -> None:
    slack.script(None, *[Answer(status=500)] * 3)  # the parent is posted, its first reply never
    message_id = channel_for(slack_settings).send(subscription(), make_digest(30))
    (parent,) = slack.messages()
    assert message_id.startswith(f"{parent.ts} partial: parts 2-3 of 3 not posted")


def test_a_webhook_posts_every_part_as_its_own_message(slack: FakeSlack, slack_settings: Settings) -> None:
    url = slack.webhook("team-papers")
    sub = subscription("team-papers", seal(url, slack_settings))
    message_id = channel_for(slack_settings).send(sub, make_digest(30, subscription_id=7))
    posted = slack.messages("team-papers")
    assert [p.kind for p in posted] == ["webhook"] * 3
    assert [pid for p in posted for pid in paper_ids(parse_message(p.payload))] == list(range(1, 31))
    assert message_id == "webhook:7:2026-11-23:3"


@pytest.mark.parametrize(
    ("answer", "permanent"),
    [
        (Answer(status=404, error="no_service"), True),
        (Answer(status=404, error="channel_not_found"), True),
        (Answer(status=410, error="channel_is_archived"), True),
        (Answer(status=403, error="action_prohibited"), True),
        (Answer(status=429, retry_after=900), False),
    ],
)
def test_webhook_errors_are_classified(
    slack: FakeSlack, slack_settings: Settings, answer: Answer, permanent: bool
) -> None:
    sub = subscription("hook", seal(slack.webhook("hook"), slack_settings))
    slack.script(answer)
    with pytest.raises(DeliveryError) as failure:
        channel_for(slack_settings).send(sub, make_digest(1))
    assert failure.value.permanent is permanent


def test_tokens_and_webhook_urls_never_reach_logs_or_errors(
    slack: FakeSlack, slack_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = slack.webhook("hook")
    hook = subscription("hook", seal(url, slack_settings))
    errors: list[str] = []
    for sub, answer in [(hook, Answer(status=500)), (subscription(), Answer(status=429, retry_after=1))]:
        slack.script(answer)
        channel_for(slack_settings).send(sub, make_digest(1))
    slack.script(*[Answer(status=500)] * 3)
    with pytest.raises(DeliveryError) as failure:
        channel_for(slack_settings).send(hook, make_digest(1))
    errors.append(str(failure.value))
    bad = subscription("hook", seal("http://127.0.0.1:1/services/T/B/secretpath", slack_settings))
    with pytest.raises(DeliveryError) as failure:
        channel_for(slack_settings).send(bad, make_digest(1))
    errors.append(str(failure.value))
    everything = caplog.text + "\n".join(errors) + repr(hook.secret)
    assert caplog.records, "the retries are logged"
    for secret in (BOT_TOKEN, url, url.rsplit("/", 1)[1], "secretpath"):
        assert secret not in everything


def test_no_credential_at_all_is_permanent(slack_settings: Settings) -> None:
    settings = slack_settings.model_copy(update={"slack_bot_token": None})
    with pytest.raises(DeliveryError, match="SLACK_BOT_TOKEN") as failure:
        channel_for(settings).send(subscription(), make_digest(1))
    assert failure.value.permanent


def test_a_secret_sealed_under_another_key_is_permanent(slack_settings: Settings) -> None:
    other = slack_settings.model_copy(update={"secret_key": slack_settings.secret_key.__class__("other")})
    with pytest.raises(DeliveryError, match="cannot be decrypted") as failure:
        channel_for(slack_settings).send(subscription(secret=seal("xoxb-x", other)), make_digest(1))
    assert failure.value.permanent


def test_the_pacer_spaces_messages_to_one_channel_not_across_channels() -> None:
    clock = Clock()
    pacer = ChannelPacer(1.0, sleep=clock.sleep, monotonic=clock.monotonic)
    for key in ("C1", "C2", "C3", "C1", "C1", "C2"):
        pacer.wait(key)
    # C1, C2, C3 at once; the second C1 waits a second; the third C1 another; C2 is due by then.
    assert clock.sleeps == [1.0, 1.0]
    pacer.hold("C3", 5.0)
    pacer.wait("C3")
    assert clock.sleeps[-1] == 5.0


def test_thread_replies_to_one_channel_are_paced(slack: FakeSlack, slack_settings: Settings) -> None:
    clock = Clock()
    channel_for(slack_settings, clock, interval=1.0).send(subscription(), make_digest(30))
    assert clock.sleeps == [1.0, 1.0] and len(slack.messages()) == 3
