"""The `paperboy` command: one Typer app, one sub-module per stage, each loaded when used."""

from __future__ import annotations

import typer

from service.cli.group import LazyCommand, PaperboyGroup


class PaperboyCommands(PaperboyGroup):
    # Order is the order of `paperboy --help`: the stages of the flow, then the service.
    lazy_commands = (
        LazyCommand("db", "service.cli.db:db_app", "Database schema."),
        LazyCommand(
            "ingest",
            "service.cli.ingest:ingest_command",
            "Read paper dumps into the database: one transaction and one summary row per file.",
        ),
        LazyCommand("papers", "service.cli.papers:papers_app", "Look at stored papers."),
        LazyCommand(
            "export",
            "service.cli.papers:export_command",
            "Write every stored paper as JSON Lines (`paperboy ingest` reads it back).",
        ),
        LazyCommand("profile", "service.cli.profile:profile_app", "Interest profiles."),
        LazyCommand(
            "web",
            "service.cli.web:web_command",
            "Serve the web app (BASE_URL must be the address people reach it at: links in emails use it).",
        ),
        LazyCommand(
            "subscribe",
            "service.cli.subscriptions:subscribe_command",
            "Subscribe an address to a digest of its interests (active at once unless --confirm).",
        ),
        LazyCommand(
            "subscriptions",
            "service.cli.subscriptions:subscriptions_app",
            "Subscriptions: who gets which digest, when.",
        ),
        LazyCommand(
            "unsubscribe",
            "service.cli.subscriptions:unsubscribe_command",
            "End a subscription (or all of an address's); its history stays.",
        ),
        LazyCommand("digest", "service.cli.digest:digest_app", "Digests: preview one, or send one now."),
        LazyCommand(
            "deliveries",
            "service.cli.deliveries:deliveries_app",
            "Deliveries: one digest per subscription and period.",
        ),
        LazyCommand(
            "archive",
            "service.cli.archive:archive_command",
            "Past digests of a subscription (newest first), or a search over the papers it was sent.",
        ),
        LazyCommand(
            "authors",
            "service.cli.authors:authors_app",
            "Follow authors: everything by a person, whatever its words.",
        ),
        LazyCommand("eval", "service.cli.eval:eval_app", "Measure matching quality on a labelled set."),
        LazyCommand(
            "match",
            "service.cli.match:match_command",
            "Rank the stored papers first seen since DATE for PROFILE, with the reason for each.",
        ),
        LazyCommand(
            "run",
            "service.cli.run:run_command",
            "The main job: ingest new dumps and send every due digest, until SIGTERM or Ctrl-C.",
        ),
        LazyCommand(
            "dispatch",
            "service.cli.run:dispatch_command",
            "Deliver every due digest and due retry once (for cron).",
        ),
        LazyCommand(
            "ingest-sources",
            "service.cli.run:ingest_sources_command",
            "Ingest new files from the drop folder and new dumps from HTTP sources once (for cron).",
        ),
        LazyCommand(
            "worker",
            "service.cli.worker:worker_command",
            "Run a Celery worker that composes and delivers the digests the clock enqueues.",
        ),
        LazyCommand(
            "metrics",
            "service.cli.worker:metrics_command",
            "Serve Prometheus metrics of the delivery path over HTTP.",
        ),
        LazyCommand("sources", "service.cli.sources:sources_app", "HTTP sources polled for new dumps."),
        LazyCommand("slack", "service.cli.slack:slack_app", "Slack: digests posted to channels."),
        LazyCommand(
            "feed", "service.cli.feed:feed_app", "Feeds: a private Atom / RSS feed per subscription."
        ),
        LazyCommand(
            "webhook",
            "service.cli.webhook:webhook_app",
            "Webhooks: digests posted to Discord, Teams or Mattermost.",
        ),
        LazyCommand("dkim", "service.cli.mail:dkim_app", "DKIM keys for signing outgoing mail."),
        LazyCommand(
            "bounces",
            "service.cli.mail:bounces_app",
            "Bounces, complaints and unsubscribe mail that came back.",
        ),
        LazyCommand(
            "inbound",
            "service.cli.mail:inbound_command",
            "Receive bounces, complaints and unsubscribe mail by SMTP or LMTP, until SIGTERM or Ctrl-C.",
        ),
        LazyCommand(
            "secrets", "service.cli.secrets:secrets_app", "The secret key and the secrets stored encrypted."
        ),
        LazyCommand(
            "doctor",
            "service.cli.mail:doctor_command",
            "Check what a real sender needs, one line each; exit 0 only when a production sender would pass.",
        ),
        LazyCommand(
            "why",
            "service.cli.why:why_command",
            "Why a digest was (or was not) sent on a day: each dispatch pass's note, in plain words.",
        ),
        LazyCommand(
            "prune",
            "service.cli.prune:prune_command",
            "Move delivered papers too old to be candidates to the archive table (run daily).",
        ),
        LazyCommand(
            "status",
            "service.cli.status:status_command",
            "Next run times, the last ingest, deliveries in the last 24 h, subscriptions needing attention.",
        ),
    )


app = typer.Typer(
    cls=PaperboyCommands,
    help="paperboy: new research papers matched to your interests.",
    no_args_is_help=True,
    # A crash report must not print local variables: they can hold secrets.
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _paperboy() -> None:
    """paperboy: new research papers matched to your interests."""


def main() -> None:
    from service.cli import group

    group.RUNNING_AS_PROGRAM = True
    app()
