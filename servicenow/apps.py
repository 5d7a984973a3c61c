from django.apps import AppConfig


class ServiceNowConfig(AppConfig):
    name = "servicenow"
    label = "servicenow"
    verbose_name = "ServiceNow"
