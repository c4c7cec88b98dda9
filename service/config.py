"""The one Settings object: everything configurable, read from the environment and .env."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError


class SetupError(ValueError):
    """A setting or database paperboy cannot work with; the message names the setting and what to do."""


class Settings(BaseSettings):
    """paperboy's configuration. Every field can be set as an upper-case environment variable."""

    # hide_input_in_errors: a validation error must never print the input, which holds the secrets.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    environment: str = Field("development", description="'production' refuses default secrets")
    var_dir: Path = Path("var")
    database_url: str = ""  # empty: SQLite file in var_dir

    # Ingest
    drop_dir: Path | None = None  # default var_dir/drop
    ingest_max_bytes: int = 200 * 1024 * 1024
    http_timeout_s: float = 30.0
    http_retries: int = 3
    http_backoff_s: float = 2.0  # first retry delay of a feed poll; doubles per attempt
    http_sources: dict[str, str] = {}  # name -> feed URL (JSON in HTTP_SOURCES); also `paperboy sources add`
    drop_settle_s: float = 2.0  # a drop-folder file modified more recently may still be being written
    # Feeds on loopback, private or link-local addresses are refused unless this is set (on-premise feeds)
    feed_allow_private_addresses: bool = False

    # Matching
    semantic: bool = True  # use the embedding model when the [semantic] extra is installed
    default_threshold: float = 0.0
    default_top_k: int = 20
    digest_cutoff: bool = True  # leave out weak matches instead of filling max_papers (digest/cutoff.py)

    # Email
    smtp_url: SecretStr | None = None  # smtp://user:pass@host:587 (STARTTLS) or smtps://...
    smtp_from: str = "paperboy <digest@paperboy.localhost>"
    smtp_rate_per_s: float = 20.0
    smtp_timeout_s: float = 30.0
    outbox_dir: Path | None = None  # default var_dir/outbox; used when smtp_url is unset
    smtp_ca_file: Path | None = None  # extra CA bundle to trust (a private relay's certificate)
    send_empty_digests: bool = False
    delivery_max_attempts: int = 5
    delivery_retry_base_s: float = 120.0  # first retry delay; doubles per attempt, with jitter
    delivery_retry_max_s: float = 6 * 3600.0
    # With workers, a retry due within this many seconds waits in Celery (the task retries itself);
    # a later one waits in the database and the clock enqueues it (service.delivery.retries).
    delivery_short_retry_s: float = 120.0
    hard_bounce_limit: int = 3
    digest_lookback_days: int = 7  # how far back a subscription's first digest looks

    # Mail that lands (service/mail): DKIM, the bounce path, what comes back, provider webhooks
    dkim_domain: str | None = None  # d= of the signature; the From domain, for DMARC alignment
    dkim_selector: str = "paperboy"
    dkim_private_key_file: Path | None = None  # RSA 2048 PEM (`paperboy dkim keygen`)
    dkim_ed25519_selector: str | None = None  # a second, Ed25519 signature (RFC 8463) when set
    dkim_ed25519_key_file: Path | None = None
    bounce_address: str | None = None  # bounces@mail.example.org: each digest returns to bounces+<tag>@
    soft_bounce_limit: int = 5  # days with a transient bounce, within soft_bounce_days, that flag an address
    soft_bounce_days: int = 14
    inbound_host: str = "127.0.0.1"  # `paperboy inbound` (SMTP or LMTP) listens here
    inbound_port: int = 2525
    ses_sns_cert_file: Path | None = None  # the SNS signing certificate (PEM) SES notifications carry
    ses_sns_topic_arn: str | None = None  # when set, notifications of other topics are refused
    postmark_webhook_credentials: SecretStr | None = None  # "user:password" of the webhook's basic auth
    sendgrid_webhook_public_key: str | None = None  # the event webhook's verification key (base64 DER)
    mailgun_webhook_signing_key: SecretStr | None = None
    webhook_max_bytes: int = 1024 * 1024  # provider event bodies larger than this are refused (413)
    webhook_max_age_s: int = 900  # signed timestamps older than this are refused (replays)

    # Web and links
    base_url: str = "http://127.0.0.1:8000"
    # Signs links and CSRF tokens, encrypts stored secrets. Unset: a random key made on first use in
    # VAR_DIR/secret_key (mode 0600); production must set it. OLD_SECRET_KEYS (a JSON list) are still
    # accepted for verifying and decrypting while a rotation is under way (`paperboy secrets rotate`).
    secret_key: SecretStr | None = None
    old_secret_keys: list[SecretStr] = []
    token_max_age_days: int = 30
    confirm_link_max_age_hours: int = 72  # and each confirm link works once
    # A digest's web page and the archive are permanent homes: their links outlive TOKEN_MAX_AGE_DAYS.
    archive_link_max_age_days: int = 3650
    admin_token: SecretStr | None = None
    unsubscribe_mailto: str = "unsubscribe@paperboy.localhost"
    # Subscribe form: at most this many attempts per client IP and per address in the window
    subscribe_limit_per_ip: int = 10
    subscribe_limit_per_address: int = 3
    subscribe_limit_window_s: int = 3600
    # Confirmation emails one address can be sent a day, whoever asks (it is a stranger's lever)
    confirm_emails_per_address_day: int = 5

    # Slack
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_rate_per_channel_s: float = 1.0
    slack_attempts: int = 3  # tries of one Slack call before the delivery is left to a later retry
    slack_max_wait_s: float = 30.0  # a longer Retry-After is not waited out in-process
    # The installable app (OAuth v2 "Add to Slack"): the app's credentials from its settings page
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_authorize_url: str = "https://slack.com/oauth/v2/authorize"
    slack_team_id: str | None = None  # SLACK_BOT_TOKEN's workspace; asked of Slack (auth.test) when unset

    # Scheduler
    dispatch_interval_s: int = 300
    retry_interval_s: int = 15  # with workers: how often the clock enqueues the retries that came due
    ingest_interval_s: int = 900
    lease_seconds: int = 60
    shutdown_grace_s: float = 120.0  # SIGTERM: how long sends in flight may take to finish

    # Workers (service.delivery.tasks): with a broker, `paperboy run` enqueues and `paperboy worker`s work
    broker_url: str = ""  # amqp://user:pass@rabbitmq:5672//; empty: every pass runs in one process
    queue_prefix: str = ""  # prepended to the queue names match / email / slack
    redis_url: str = ""  # redis://redis:6379/0: relay and Slack rate limits shared by all workers
    # A delivery its dead owner left between send and mark: `hold` for an operator, or `resend` (same
    # Message-ID) once it has been stuck this long.
    stuck_delivery_policy: Literal["hold", "resend"] = "hold"
    stuck_delivery_delay_s: float = 600.0
    heartbeat_s: float = 10.0  # passes and workers say they are alive this often; dead after 3 missed
    log_format: Literal["text", "json"] = "text"  # json: one object per record, for a log store

    @model_validator(mode="after")
    def _refuse_missing_secret_in_production(self) -> Settings:
        # Several production instances must share one key, so none is generated for them.
        if self.environment == "production" and not (self.secret_key and self.secret_key.get_secret_value()):
            raise ValueError("SECRET_KEY must be set when ENVIRONMENT=production")
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.var_dir / 'paperboy.db').as_posix()}"

    @property
    def resolved_outbox_dir(self) -> Path:
        return self.outbox_dir or self.var_dir / "outbox"

    @property
    def resolved_drop_dir(self) -> Path:
        return self.drop_dir or self.var_dir / "drop"


class SettingsError(SetupError):
    """Settings that cannot be used; the message names each setting at fault, never a value."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests build their own Settings instead). A ValidationError is
    explained by the CLI (service/cli/setup_errors.py) without the input, which holds secrets."""
    try:
        return Settings()
    except PydanticSettingsError as exc:  # a value that is not the JSON its setting needs
        raise SettingsError(f"invalid settings: {exc}") from None
