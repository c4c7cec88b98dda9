"""The Slack app manifest (manifest.json beside this module), with BASE_URL filled in.

An admin pastes it at api.slack.com/apps ("Create New App", "From an app manifest") and gets the
slash command, interactivity, event subscriptions, App Home and scopes paperboy needs in one step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from service.config import Settings

MANIFEST = Path(__file__).with_name("manifest.json")


class ManifestError(ValueError):
    """BASE_URL cannot be used in a manifest."""


def manifest(settings: Settings) -> dict[str, Any]:
    """The manifest for this deployment; Slack requires https request URLs."""
    base = settings.base_url.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme != "https" or not parts.hostname:
        raise ManifestError(
            f"BASE_URL: {settings.base_url!r} is not an https URL; Slack only calls https URLs"
        )
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ManifestError(f"BASE_URL: {settings.base_url!r} must be a plain https://host[/path]")
    text = MANIFEST.read_text(encoding="utf-8").replace("${BASE_URL}", json.dumps(base)[1:-1])
    data: dict[str, Any] = json.loads(text)
    return data
