"""Notifications: which mails a person wants, and which reminders were already sent."""

from django.db import models


class NotificationPreference(models.Model):
    """A person's choice of mails; a person without a row gets every mail (the defaults)."""

    person = models.OneToOneField(
        "people.Person", on_delete=models.CASCADE, related_name="notification_preference"
    )
    packet_updates = models.BooleanField(
        default=True,
        help_text="My packet needs changes, is endorsed or declined, or is decided.",
    )
    review_requests = models.BooleanField(
        default=True,
        help_text="A packet waits on me: submitted to me, or endorsed for the committee.",
    )
    deadline_reminders = models.BooleanField(
        default=True, help_text="My draft packet's submission deadline is near."
    )
    waiting_reminders = models.BooleanField(
        default=True, help_text="A packet has waited on me for several days."
    )
    candidate_digest = models.BooleanField(
        default=True,
        help_text="Weekly: new imported candidates that would close a gap of my next level.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    FIELDS = (
        "packet_updates",
        "review_requests",
        "deadline_reminders",
        "waiting_reminders",
        "candidate_digest",
    )

    def __str__(self) -> str:
        return f"notifications of {self.person}"


class NotificationSent(models.Model):
    """One reminder or digest mailed: the unique key keeps beat from sending it twice."""

    class Kind(models.TextChoices):
        DEADLINE_REMINDER = "deadline_reminder", "Deadline reminder"
        WAITING_REMINDER = "waiting_reminder", "Waiting reminder"
        CANDIDATE_DIGEST = "candidate_digest", "Candidate digest"

    person = models.ForeignKey(
        "people.Person", on_delete=models.CASCADE, related_name="notifications_sent"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # what the mail was about: the packet and deadline, the packet's waiting stretch, the week
    key = models.CharField(max_length=200)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["person", "kind", "key"], name="notification_sent_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} → {self.person}"
