from django.apps import AppConfig
from django.core import checks


class NotificationsConfig(AppConfig):
    name = "apps.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from .checks import site_url_deploy_check

        checks.register(site_url_deploy_check, checks.Tags.security, deploy=True)
