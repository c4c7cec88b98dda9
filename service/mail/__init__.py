"""Mail that lands and stays welcome: DKIM signing, the bounce path, and everything that comes back
(delivery status notifications, feedback-loop complaints, unsubscribe mail, provider webhooks)."""
