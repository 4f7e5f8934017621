"""A hook written with Powertools for AWS Lambda's AppSync Events resolver, unchanged from what
AppSync Events would run: members-only rooms refused by raising UnauthorizedException, a banned word
refused for its event, every other message stamped. The local gateway's tests invoke it through
tests/hooks/invoke_api.py."""

from aws_lambda_powertools.event_handler import AppSyncEventsResolver
from aws_lambda_powertools.event_handler.events_appsync.exceptions import UnauthorizedException

app = AppSyncEventsResolver()


@app.on_subscribe("/chat/*")
def subscribe():
    if app.current_event.info.channel_path == "/chat/vip":
        raise UnauthorizedException("members only")


@app.on_publish("/chat/*")
def publish(payload):
    if "darn" in payload.get("text", ""):
        raise ValueError("banned word")
    return {**payload, "checked": True}


def handler(event, context):
    return app.resolve(event, context)
