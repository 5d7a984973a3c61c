"""The claims this provider releases: email, email_verified and name.

A user in the group `unverified-email` has `email_verified: false`, as an organisation's
directory says of an address nobody confirmed."""

from oauth2_provider.oauth2_validators import OAuth2Validator

UNVERIFIED_GROUP = "unverified-email"


class ClaimsValidator(OAuth2Validator):
    def get_additional_claims(self, request):
        user = request.user
        return {
            "email": user.email,
            "email_verified": not user.groups.filter(name=UNVERIFIED_GROUP).exists(),
            "name": user.get_full_name() or user.username,
            "preferred_username": user.username,
        }
