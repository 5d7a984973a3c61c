"""System checks: `manage.py check --deploy` warns about a production setting that loosens
the outbound policy for ServiceNow instance URLs, and about a deployment left on the embedded
SQLite broker (no CELERY_BROKER_URL: syncs would queue in a file on one machine)."""

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


@register(Tags.compatibility, deploy=True)
def embedded_broker_check(app_configs, **kwargs):
    from ladder_tracker.settings.base import celery_broker_is_embedded

    if not celery_broker_is_embedded(getattr(settings, "CELERY_BROKER_URL", "") or ""):
        return []
    return [
        Warning(
            "Celery uses the embedded SQLite broker (no CELERY_BROKER_URL or BROKER_URL set).",
            hint="Set CELERY_BROKER_URL to a Redis URL: the embedded broker is for one machine "
            "(make demo), its queue file grows and a killed worker's task waits for the "
            "reclaim task.",
            id="servicenow.W002",
        )
    ]
