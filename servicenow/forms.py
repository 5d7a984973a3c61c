"""Forms for ServiceNow setup, shared by the setup pages and the Django admin: a connection
whose credential fields follow its auth type, and a source whose settings are fields rather
than JSON. Every rule is a service's (servicenow.services), so the API, the admin and the
pages refuse the same things with the same words."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError

from . import services
from .models import Connection, Source
from .secrets import secret_encrypt

# form field -> (Connection property saying one is stored, what to call it in messages)
SECRET_FIELDS = {
    "password": ("has_password", "password"),
    "client_secret": ("has_client_secret", "client secret"),
}


def _secret_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


def auth_types_of(field_name: str) -> list[str]:
    """The auth types that use a credential field (its "clear stored" box follows it); every
    auth type for the other fields."""
    name = field_name.removeprefix("clear_")
    if name not in services.CREDENTIAL_FIELDS:
        return list(services.AUTH_TYPE_FIELDS)
    return [auth for auth, names in services.AUTH_TYPE_FIELDS.items() if name in names]


class ConnectionForm(forms.ModelForm):
    """A connection with write-only secrets: empty keeps the stored one (on edit), a value
    replaces it, the "clear stored" box removes it; the form says whether one is stored,
    never what it is. Only the chosen auth type's credentials count: the others are
    cleared on save (a stored password a client-credentials connection never sends is a
    liability), and the chosen type's must be there. The setup page renders the other
    types' rows hidden and connection-auth.js swaps them as the type changes (in the admin
    too); the server decides either way."""

    password = _secret_field("Password")
    clear_password = forms.BooleanField(required=False, label="Clear stored password")
    client_secret = _secret_field("Client secret")
    clear_client_secret = forms.BooleanField(required=False, label="Clear stored client secret")
    api_path = forms.ChoiceField(
        label="Table API path",
        choices=[(path, path) for path in services.API_PATHS],
        initial=services.API_PATHS[0],
        help_text="Versioned paths pin the API version; the default follows the instance.",
    )

    class Meta:
        model = Connection
        fields = [
            "name",
            "instance_url",
            "auth_type",
            "username",
            "password",
            "clear_password",
            "client_id",
            "client_secret",
            "clear_client_secret",
            "verify_tls",
            "ca_certificate",
            "proxy_url",
            "page_size",
            "api_path",
            "backfill_workers",
        ]
        labels = {
            "instance_url": "Instance URL",
            "client_id": "Client id",
            "proxy_url": "Proxy URL",
            "ca_certificate": "CA certificate",
            "verify_tls": "Verify TLS certificates",
        }
        help_texts = {
            "auth_type": "Basic sends the username and password with each request; OAuth "
            "gets a token from the instance's /oauth_token.do (an OAuth application "
            "registered on the instance gives the client id and secret).",
            "username": "The integration user (needs read access to the tables synced and "
            "to sys_user).",
            "client_id": "From the instance's OAuth application registry.",
            "verify_tls": "Leave on: off accepts any certificate, including an attacker's.",
            "page_size": f"Rows per request, 1–{services.PAGE_SIZE_MAX}.",
        }
        widgets = {"ca_certificate": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored_any = self.instance.pk is not None
        for name, (has_stored, label) in SECRET_FIELDS.items():
            stored = stored_any and getattr(self.instance, has_stored)
            clear = self.fields[f"clear_{name}"]
            if stored:
                self.fields[name].help_text = (
                    f"A {label} is stored (write-only, never shown). Leave empty to keep it, "
                    f"type a new one to replace it."
                )
                clear.help_text = f"Remove the stored {label}."
            else:
                self.fields[name].help_text = f"No {label} stored. Write-only."
                # Nothing to clear: a disabled box keeps its initial False whatever is posted.
                clear.disabled = True
                clear.help_text = f"No {label} stored."
        for name in ("username", "client_id"):
            self.fields[name].required = False  # the auth type decides (clean)
        # connection-auth.js reads which fields each auth type shows from the select itself.
        self.fields["auth_type"].widget.attrs["data-auth-fields"] = json.dumps(
            {
                auth: [
                    name
                    for name in self.fields
                    if name.removeprefix("clear_") in services.CREDENTIAL_FIELDS
                    and auth in auth_types_of(name)
                ]
                for auth in services.AUTH_TYPE_FIELDS
            }
        )

    class Media:
        js = ("js/connection-auth.js",)

    @property
    def chosen_auth_type(self) -> str:
        """The auth type the form stands for now: the posted one, else the stored one."""
        if self.is_bound:
            posted = self.data.get(self.add_prefix("auth_type"))
            if posted in services.AUTH_TYPE_FIELDS:
                return posted
        return self.instance.auth_type or Connection.AuthType.BASIC

    def rows(self) -> list[dict]:
        """The setup page's fields, each with the auth types it belongs to and whether the
        chosen one shows it (a hidden field is there for the script to show)."""
        chosen = self.chosen_auth_type
        return [
            {"field": self[name], "auth_types": " ".join(types), "shown": chosen in types}
            for name in self.fields
            for types in [auth_types_of(name)]
        ]

    def clean_instance_url(self):
        url = self.cleaned_data["instance_url"].rstrip("/")
        try:
            services.connection_url_validate(url)
        except ValidationError:
            self._forget_url_credentials()
            raise
        return url

    def _forget_url_credentials(self) -> None:
        """A password typed into the URL is a secret too: the form shown back with the
        error keeps the URL without it."""
        key = self.add_prefix("instance_url")
        parts = urlsplit(self.data.get(key, ""))
        if parts.username is None and parts.password is None:
            return
        self.data = self.data.copy()
        self.data[key] = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()

    def clean_proxy_url(self):
        url = self.cleaned_data["proxy_url"].strip().rstrip("/")
        services.connection_proxy_url_validate(url)
        return url

    def clean_ca_certificate(self):
        pem = self.cleaned_data["ca_certificate"].strip()
        services.connection_ca_certificate_validate(pem)
        return pem

    def clean_page_size(self):
        value = self.cleaned_data["page_size"]
        services.connection_page_size_validate(value)
        return value

    def clean_backfill_workers(self):
        value = self.cleaned_data["backfill_workers"]
        services.connection_backfill_workers_validate(value)
        return value

    def clean_api_path(self):
        value = self.cleaned_data["api_path"]
        services.connection_api_path_validate(value)
        return value

    def clean(self):
        cleaned = super().clean()
        auth = cleaned.get("auth_type")
        if auth not in services.AUTH_TYPE_FIELDS:
            return cleaned  # the choice field said why
        used = services.AUTH_TYPE_FIELDS[auth]
        for name in ("username", "client_id"):
            if name not in used:
                cleaned[name] = ""  # another auth type's: not kept
        problems = services.connection_auth_problems(
            auth_type=auth,
            username=cleaned.get("username", ""),
            client_id=cleaned.get("client_id", ""),
        )
        for name, problem in problems.items():
            self.add_error(name, problem)
        auth_label = Connection.AuthType(auth).label
        for name, (has_stored, label) in SECRET_FIELDS.items():
            typed, clear = cleaned.get(name), cleaned.get(f"clear_{name}")
            if typed and clear:
                self.add_error(
                    f"clear_{name}",
                    f"Either type a new {label} or tick “Clear stored {label}”, not both.",
                )
                continue
            # A new connection, or one switched to this auth type, brings the secrets it
            # needs. Clearing a stored one stays possible: an explicit act.
            missing = name in used and not typed and not clear and not self._stored(has_stored)
            if missing and (self.instance.pk is None or "auth_type" in self.changed_data):
                self.add_error(name, f"{auth_label} needs a {label}.")
        return cleaned

    def _stored(self, has_stored: str) -> bool:
        return self.instance.pk is not None and getattr(self.instance, has_stored)

    def secret_changes(self) -> dict[str, str | None]:
        """connection_save's arguments: None keeps the stored secret, "" clears it (ticked,
        or not used by the chosen auth type), a value replaces it."""
        used = services.AUTH_TYPE_FIELDS[self.cleaned_data["auth_type"]]
        changes = {}
        for name, (has_stored, _) in SECRET_FIELDS.items():
            stored = self.instance.pk is not None and getattr(self.instance, has_stored)
            if name not in used:
                changes[name] = "" if stored else None
            elif self.cleaned_data.get(f"clear_{name}"):
                changes[name] = ""
            else:
                changes[name] = self.cleaned_data.get(name) or None
        return changes

    def save_connection(self, *, actor) -> Connection:
        """Save through the service (which validates again and audits a changed secret)."""
        return services.connection_save(
            connection=self.instance, actor=actor, **self.secret_changes()
        )

    def trial_connection(self) -> Connection:
        """An unsaved copy of the connection as the form has it, with the secrets it would
        use (typed ones, or the stored ones when left empty): what Test connection tries
        before anything is saved. Needs a valid form."""
        trial = Connection(
            **{
                name: self.cleaned_data[name]
                for name in self._meta.fields
                if name in self.cleaned_data
                and name not in SECRET_FIELDS
                and not name.startswith("clear_")
            }
        )
        stored = Connection.objects.filter(pk=self.instance.pk or 0).first()
        for name, change in self.secret_changes().items():
            column = f"{name}_encrypted"
            if change is None:  # kept: the stored one, if any
                setattr(trial, column, getattr(stored, column, "") if stored else "")
            else:
                setattr(trial, column, secret_encrypt(change) if change else "")
        return trial


_FIELD_LIST_SPLIT = re.compile(r"[\s,]+")


class FieldNamesField(forms.CharField):
    """A list of ServiceNow field names typed as text, comma- or space-separated; stored as
    the JSON list the sync reads."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value):
        text = (super().to_python(value) or "").strip()
        if text[:1] in ("[", '"', "{"):  # JSON, as the admin took before: validate() judges
            try:
                return json.loads(text)
            except ValueError:
                raise ValidationError('A list of field names, e.g. ["assigned_to"].') from None
        names = [name for name in _FIELD_LIST_SPLIT.split(text) if name]
        return list(dict.fromkeys(names))  # in order, once each

    def validate(self, value):
        if problem := services.source_field_names_problem(value):
            raise ValidationError(problem)


class SourceForm(forms.ModelForm):
    """A source's settings as fields with help text, validated by services.source_problems
    and stored in the same columns the sync reads (the field lists as JSON lists)."""

    fields = FieldNamesField(
        label="Extra fields",
        required=False,
        help_text="Fields to keep besides the standard ones (number, short description, "
        "state, priority, dates, attribution fields), comma-separated, e.g. "
        "“category, u_model_name”.",
    )
    attribution_fields = FieldNamesField(
        label="Attribution fields",
        required=False,
        help_text="Reference fields to sys_user that say whose work a record is, "
        "comma-separated. Empty: assigned_to.",
    )

    class Meta:
        model = Source
        fields = list(Source.SETTINGS)
        labels = {
            "query": "Filter (encoded query)",
            "interval_minutes": "Sync every (minutes)",
            "overlap_seconds": "Overlap (seconds)",
            "track_deletes": "Track deletes",
        }
        help_texts = {
            "table": "The ServiceNow table, e.g. incident, change_request, sys_user.",
            "kind": "Work items become evidence candidates; Users (sys_user) creates and "
            "updates people and their managers.",
            "query": "Which records to read, as a ServiceNow encoded query (the list filter's "
            "“Copy query”), e.g. active=true^assignment_group=… One line. Empty: all.",
            "enabled": "A disabled source is never synced, by schedule or by hand.",
            "interval_minutes": "Empty: only when synced by hand. At most one week (10080).",
            "overlap_seconds": "Each incremental run re-reads this far back, for records "
            "committed late on the instance.",
            "track_deletes": "Read sys_audit_delete so records deleted on the instance are "
            "flagged here.",
        }
        widgets = {"query": forms.TextInput(attrs={"size": 60})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connection"].empty_label = None

    def clean_query(self):
        return self.cleaned_data["query"].strip()

    def clean(self):
        cleaned = super().clean()
        trial = Source(
            **{
                name: cleaned[name]
                for name in ("table", "kind", "query", "fields", "attribution_fields")
                if name in cleaned
            },
            interval_minutes=cleaned.get("interval_minutes"),
        )
        for name, problem in services.source_problems(source=trial).items():
            if name in cleaned and name not in self.errors:
                self.add_error(name, problem)
        return cleaned

    def save_source(self) -> Source:
        return services.source_save(source=self.instance)
