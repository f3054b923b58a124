"""Pure Block Kit builders: plain data in, `slack_sdk.models` objects (or their dicts) out.

Nothing here calls Slack or the database; every builder is tested without a server.
"""
