"""Built-in notifiers: a generic JSON webhook, Slack-compatible incoming webhooks, Alertmanager, email.

Each is delivered through the outbox, at least once, with the event's stable id (``event["id"]``)
so the receiver can drop a duplicate.
"""
