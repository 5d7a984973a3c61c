from django.apps import AppConfig
from django.core import checks


class PeopleConfig(AppConfig):
    name = "apps.people"
    label = "people"
    verbose_name = "People"

    def ready(self):
        checks.register(sign_in_check, checks.Tags.security)
        checks.register(sign_in_deploy_check, checks.Tags.security, deploy=True)


def sign_in_check(app_configs, **kwargs):
    """PASSWORD_LOGIN off without SSO leaves only the break-glass accounts able to sign in."""
    from django.conf import settings

    from .sso import sso_enabled

    found = []
    if not settings.PASSWORD_LOGIN and not sso_enabled():
        found.append(
            checks.Warning(
                "PASSWORD_LOGIN is off but SSO is not configured (OIDC_ISSUER, OIDC_CLIENT_ID): "
                "only superusers and BREAK_GLASS_USERS can sign in.",
                id="people.W001",
            )
        )
    if sso_enabled() and not settings.OIDC_RP_CLIENT_SECRET:
        found.append(
            checks.Error(
                "OIDC_CLIENT_SECRET is empty: the code exchange with the provider will fail.",
                id="people.E001",
            )
        )
    return found


def sign_in_deploy_check(app_configs, **kwargs):
    """In production the provider is reached over https: the code exchange carries the client
    secret and the ID token."""
    from django.conf import settings

    from .sso import sso_enabled

    if sso_enabled() and not settings.OIDC_ISSUER.startswith("https://"):
        return [
            checks.Error(
                f"OIDC_ISSUER {settings.OIDC_ISSUER} is not https.",
                id="people.E002",
            )
        ]
    return []
