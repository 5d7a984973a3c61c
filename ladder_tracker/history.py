"""Change history of configuration (django-simple-history): who changed a cycle, a person's
level, manager or roles, a suggestion rule, a ServiceNow source or connection, when, and
what it was before.

Each audited model declares `history = audited_history(...)`; every save and delete of it
writes a historical row (an insert, nothing else). The actor is, in order: the `actor` a
service passes (`history_context(actor=…)`, for writes made on someone's behalf), the
signed-in user of the request (simple_history's middleware; DRF token users too, since DRF
sets the user on the Django request it wraps), else nobody ("system", with the reason a
command or task gives: `history_context(reason=…)`).

Not audited here: high-volume rows (work items, evidence, runs) and packets, whose own
timeline is PacketEvent. A save that writes only unaudited columns (a connection's last
check, a source's failure alert, `secrets_rotate`'s re-encryption) writes no history row.
Secrets never reach a historical row: their columns are excluded and the row records only
that a secret was set, changed or cleared (`secrets_changed`, see `SecretsHistory`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import models
from django.db.models.signals import post_init
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record

_actor: ContextVar = ContextVar("history_actor", default=None)
_reason: ContextVar[str] = ContextVar("history_reason", default="")


@contextmanager
def history_context(*, actor=None, reason: str = "") -> Iterator[None]:
    """Within the block, history rows name `actor` (when given) and `reason` (when the
    row has none of its own). Nested blocks keep the outer values they do not replace."""
    tokens = []
    if actor is not None and getattr(actor, "pk", None) is not None:
        tokens.append((_actor, _actor.set(actor)))
    if reason:
        tokens.append((_reason, _reason.set(reason)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def history_user(instance=None, request=None, **kwargs):
    """simple_history's `get_user`: the service's actor first, then the request's user."""
    actor = _actor.get()
    if actor is not None:
        return actor
    if request is not None and request.user.is_authenticated:
        return request.user
    return None


def history_reason() -> str:
    return _reason.get()


class AuditedHistoricalRecords(HistoricalRecords):
    """HistoricalRecords that skips a save naming only unaudited columns in update_fields,
    and fills the reason from `history_context` when the instance gives none."""

    def post_save(self, instance, created, using=None, **kwargs):
        update_fields = kwargs.get("update_fields")
        if not created and update_fields is not None:
            audited = {f.attname for f in self.fields_included(instance)} | {
                f.name for f in self.fields_included(instance)
            }
            if not set(update_fields) & audited:
                return
        super().post_save(instance, created, using=using, **kwargs)

    def get_change_reason_for_object(self, instance, history_type, using):
        return (
            super().get_change_reason_for_object(instance, history_type, using)
            or (_reason.get()[:100])
        )


def audited_history(*, excluded_fields: list[str] | None = None, bases=(models.Model,)):
    return AuditedHistoricalRecords(
        excluded_fields=excluded_fields or [],
        get_user=history_user,
        bases=bases,
        # rows stay when the object is deleted: the deletion is itself a row
        cascade_delete_history=False,
    )


class SecretsHistory(models.Model):
    """Base of the historical rows of a model with secrets: which secret was set, changed
    or cleared by this change ({"password": "changed"}), never a value or its ciphertext."""

    secrets_changed = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True


def history_secrets_track(model: type[models.Model]) -> None:
    """Record secret changes of `model` (its historical rows built on SecretsHistory):
    `model.SECRET_FIELDS` maps each encrypted column to the name shown ("password"). The
    ciphertext as loaded is remembered on the instance, so any writer's change is seen,
    not only a service's, and no query is added."""
    post_init.connect(_secrets_remember, sender=model, weak=False)


def _secrets_remember(sender, instance, **kwargs) -> None:
    # __dict__, not getattr: a deferred column must not cost a query per instance
    instance._secrets_saved = {col: instance.__dict__.get(col) for col in sender.SECRET_FIELDS}


def _secret_change(old: str, new: str) -> str:
    if not old:
        return "set"
    return "cleared" if not new else "changed"


def _secrets_record(sender, instance, history_instance, **kwargs) -> None:
    if not isinstance(history_instance, SecretsHistory):
        return
    # a new row starts with no secret, whatever the instance was built with
    saved = {} if history_instance.history_type == "+" else getattr(instance, "_secrets_saved", {})
    current = {col: instance.__dict__.get(col) for col in type(instance).SECRET_FIELDS}
    if history_instance.history_type != "-":
        history_instance.secrets_changed = {
            name: _secret_change(saved.get(col) or "", current[col] or "")
            for col, name in type(instance).SECRET_FIELDS.items()
            if (saved.get(col) or "") != (current[col] or "")
        }
    instance._secrets_saved = current


pre_create_historical_record.connect(_secrets_record, weak=False)
