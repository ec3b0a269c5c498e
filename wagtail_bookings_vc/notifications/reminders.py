"""Reminder emails, sent by the periodic sweep."""


def send_due_reminders() -> int:
    """Send every reminder that is due and not yet sent; return how many were sent."""
    return 0
