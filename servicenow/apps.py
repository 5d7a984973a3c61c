from django.apps import AppConfig


class ServiceNowConfig(AppConfig):
    name = "servicenow"
    label = "servicenow"
    verbose_name = "ServiceNow"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
