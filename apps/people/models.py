"""People: an engineer's profile, their place on a ladder and in the org chart."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from ladder_tracker.history import audited_history


class Person(models.Model):
    # Null until the person logs in: people may arrive from ServiceNow before they have a login.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="person",
    )
    email = models.EmailField(blank=True)
    name = models.CharField(max_length=200)
    title = models.CharField(max_length=200, blank=True)
    ladder = models.ForeignKey(
        "ladders.Ladder", on_delete=models.PROTECT, null=True, blank=True, related_name="people"
    )
    level = models.PositiveSmallIntegerField(null=True, blank=True)
    manager = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reports"
    )
    servicenow_sys_id = models.CharField(max_length=32, blank=True, db_index=True)
    # What the users source last saw, so a stale row never overwrites a newer one and a
    # manager who arrives on a later page is still linked.
    servicenow_updated_on = models.DateTimeField(null=True, blank=True)
    servicenow_mod_count = models.IntegerField(null=True, blank=True)
    servicenow_manager_sys_id = models.CharField(max_length=32, blank=True)
    is_committee = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    # level, manager, roles and profile changes (ladder_tracker/history.py); the sync's
    # bookkeeping columns change on every users page and are not history
    history = audited_history(
        excluded_fields=[
            "servicenow_updated_on",
            "servicenow_mod_count",
            "servicenow_manager_sys_id",
        ]
    )

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "people"
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                name="person_email_ci_unique",
                condition=~models.Q(email=""),
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.email


class LevelChange(models.Model):
    """A person's level history: every change of level is a row (promotions point at the
    packet that decided them)."""

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="level_changes")
    from_level = models.PositiveSmallIntegerField(null=True, blank=True)
    to_level = models.PositiveSmallIntegerField(null=True, blank=True)
    effective_on = models.DateField()
    reason = models.CharField(max_length=200, blank=True)
    # The packet that decided a promotion; a plain id until the packets app exists.
    packet_id = models.BigIntegerField(null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["person", "effective_on", "id"]

    def __str__(self) -> str:
        return f"{self.person}: {self.from_level} → {self.to_level} on {self.effective_on}"
