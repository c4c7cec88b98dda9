"""The one small interface every delivery channel implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from service.digest.model import Digest
    from service.models import Subscription


class DeliveryError(Exception):
    """A send that did not happen. `permanent` errors are never retried."""

    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class Channel(Protocol):
    """Sends one rendered digest; returns the provider's message id (Message-ID, Slack ts)."""

    name: str

    def send(self, subscription: Subscription, digest: Digest) -> str: ...

    def close(self) -> None: ...
