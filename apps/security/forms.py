from django import forms
from django.conf import settings


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What uses it, e.g. “laptop script” or “CI export”."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # built here: the limits are settings, which tests change
        self.fields["expires_in_days"] = forms.IntegerField(
            label="Expires in (days)",
            min_value=1,
            max_value=settings.API_TOKEN_MAX_DAYS,
            required=False,
            help_text=f"Leave empty for {settings.API_TOKEN_DEFAULT_DAYS} days.",
        )
