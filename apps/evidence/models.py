"""Evidence of work against a ladder, written by hand or imported from ServiceNow.

This is the part the ServiceNow sync needs (imported candidates with their snapshot and
suggested links); the evidence issue grows it (attachments, history, pages).
"""

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models

from .markdown import MARKDOWN_MAX_LENGTH, MARKDOWN_TOO_LONG


def evidence_usable_q(prefix: str = "") -> models.Q:
    """Evidence that counts (for coverage, packets and the builder): accepted and not
    deleted. `prefix` is the path from another model, e.g. "evidence__" on a link."""
    return models.Q(
        **{f"{prefix}status": Evidence.Status.ACCEPTED, f"{prefix}deleted_at__isnull": True}
    )


class EvidenceQuerySet(models.QuerySet):
    def usable(self) -> "EvidenceQuerySet":
        """Accepted and not deleted (evidence_usable_q)."""
        return self.filter(evidence_usable_q())


class Evidence(models.Model):
    class Source(models.TextChoices):
        MANUAL = "manual", "Manual"
        SERVICENOW = "servicenow", "ServiceNow"

    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        ACCEPTED = "accepted", "Accepted"
        DISMISSED = "dismissed", "Dismissed"

    class Visibility(models.TextChoices):
        PRIVATE = "private", "Private"
        MANAGER = "manager", "Manager"

    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="evidence")
    # The engineer's own words; an import sets them once and a re-sync never touches them.
    title = models.CharField(max_length=300)
    # Markdown; the limit keeps rendering cheap (apps/evidence/markdown.py)
    description = models.TextField(
        blank=True, validators=[MaxLengthValidator(MARKDOWN_MAX_LENGTH, MARKDOWN_TOO_LONG)]
    )
    occurred_on = models.DateField(null=True, blank=True)
    occurred_until = models.DateField(null=True, blank=True)
    url = models.URLField(max_length=1000, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACCEPTED)
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.MANAGER
    )
    work_item = models.ForeignKey(
        "servicenow.WorkItem",
        on_delete=models.PROTECT,  # evidence on a deleted record is kept and flagged, not dropped
        null=True,
        blank=True,
        related_name="evidence",
    )
    # The work item's mapped fields as last synced: read-only for people, refreshed by syncs.
    snapshot = models.JSONField(default=dict, blank=True)
    snapshot_updated_at = models.DateTimeField(null=True, blank=True)
    skills = models.ManyToManyField("ladders.Skill", blank=True, related_name="evidence")
    # The description rendered and sanitised once, on write (services.markdown_render).
    description_html = models.TextField(blank=True, editable=False)
    # Soft delete: hidden everywhere but the owner's trash, restorable (undo).
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = EvidenceQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_on", "-id"]
        verbose_name_plural = "evidence"
        constraints = [
            models.UniqueConstraint(
                fields=["person", "work_item"],
                condition=models.Q(work_item__isnull=False),
                name="evidence_one_per_person_and_work_item",
            ),
        ]
        indexes = [
            models.Index(fields=["person", "status"]),
            # Lists read (person, not deleted) by date: a partial index serves the page in
            # order (no sort; an IS NULL column inside the key would not let PostgreSQL use
            # its order) and the page's COUNT from the index alone (benchmarks/evidence.py).
            models.Index(
                fields=["person", "-occurred_on", "-id"],
                condition=models.Q(deleted_at__isnull=True),
                name="evidence_live_by_date",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def title_shortened(self) -> bool:
        """An imported title cut to fit (candidates.title_fit); the snapshot has it all."""
        return (
            self.source == self.Source.SERVICENOW
            and len(self.title) == self._meta.get_field("title").max_length
            and self.title.endswith("…")
        )


class EvidenceLink(models.Model):
    class Origin(models.TextChoices):
        SUGGESTED = "suggested", "Suggested"
        ENGINEER = "engineer", "Engineer"
        MANAGER = "manager", "Manager"

    evidence = models.ForeignKey(Evidence, on_delete=models.CASCADE, related_name="links")
    expectation = models.ForeignKey(
        "ladders.Expectation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="evidence_links",
    )
    deliverable = models.ForeignKey(
        "ladders.Deliverable",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="evidence_links",
    )
    rationale = models.TextField(blank=True)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.ENGINEER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["evidence", "expectation"],
                condition=models.Q(expectation__isnull=False),
                name="evidence_link_expectation_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(expectation__isnull=False) | models.Q(deliverable__isnull=False),
                name="evidence_link_has_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.evidence_id} → {self.expectation_id or self.deliverable_id}"


def _attachment_path(instance, filename: str) -> str:
    # Never the user's file name on disk: a random name under a private folder.
    import uuid

    return f"evidence/{instance.evidence.person_id}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    evidence = models.ForeignKey(Evidence, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=_attachment_path, max_length=300)
    name = models.CharField(max_length=255)  # the uploaded name, for display and download
    size = models.PositiveBigIntegerField()
    content_type = models.CharField(max_length=100)  # detected from the content
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name


class EvidenceEvent(models.Model):
    """The item's history: who did what, when, and which fields changed (old → new)."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        IMPORTED = "imported", "Imported from ServiceNow"
        UPDATED = "updated", "Updated"
        ACCEPTED = "accepted", "Accepted"
        DISMISSED = "dismissed", "Dismissed"
        DELETED = "deleted", "Deleted"
        RESTORED = "restored", "Restored"
        ATTACHED = "attached", "File attached"
        DETACHED = "detached", "File removed"
        # the owner put a private item into a packet and chose to share it with reviewers
        SHARED = "shared", "Shared with reviewers"

    evidence = models.ForeignKey(Evidence, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    changes = models.JSONField(default=dict, blank=True)  # {field: [before, after]}
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.evidence_id} {self.action} {self.at:%Y-%m-%d %H:%M}"


class Corroboration(models.Model):
    """The owner of an imported item asked someone who saw the work to confirm it.

    The corroborator sees that one item (title and snapshot) through this row and nothing
    else of the owner's (apps/evidence/corroboration.py)."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        CONFIRMED = "confirmed", "Confirmed"
        DECLINED = "declined", "Declined"

    evidence = models.ForeignKey(Evidence, on_delete=models.CASCADE, related_name="corroborations")
    person = models.ForeignKey(
        "people.Person", on_delete=models.CASCADE, related_name="corroborations_to_me"
    )
    asked_by = models.ForeignKey(
        "people.Person", on_delete=models.CASCADE, related_name="corroborations_asked"
    )
    # Why they were suggested, as shown when asked: ["co-assignee", "work note author", ...]
    reasons = models.JSONField(default=list, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    comment = models.TextField(blank=True, validators=[MaxLengthValidator(2000)])
    created_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["evidence", "person"], name="corroboration_one_per_item_and_person"
            ),
        ]
        indexes = [models.Index(fields=["person", "state"])]

    def __str__(self) -> str:
        return f"{self.evidence_id} ← {self.person_id} ({self.state})"
