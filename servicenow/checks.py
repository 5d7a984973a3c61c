"""System checks: `manage.py check --deploy` warns about a production setting that loosens
the outbound policy for ServiceNow instance URLs."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def allow_local_instances_check(app_configs, **kwargs):
    if not getattr(settings, "SERVICENOW_ALLOW_LOCAL_INSTANCES", False):
        return []
    return [
        Warning(
            "SERVICENOW_ALLOW_LOCAL_INSTANCES is on: connections may reach plain http, "
            "loopback and private addresses from this server.",
            hint="Turn it off unless the ServiceNow instance is on-premise on a private "
            "network; silence servicenow.W001 if it is.",
            id="servicenow.W001",
        )
    ]
