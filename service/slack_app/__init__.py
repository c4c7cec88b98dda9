"""paperboy as an installable Slack app: installs, request checks, modal, App Home, unfurls."""
