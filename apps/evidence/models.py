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
    # sha256 of the snapshot's canonical form (ladder_tracker.canonical.snapshot_sha256), set
    # with the snapshot every time it is written; None without a snapshot (manual evidence).
    snapshot_sha256 = models.CharField(max_length=64, null=True, blank=True, editable=False)
    snapshot_updated_at = models.DateTimeField(null=True, blank=True)
    skills = models.ManyToManyField("ladders.Skill", blank=True, related_name="evidence")
    # What to link it to, best first: [{code, score, origin rule|learned|similar, reason}],
    # computed at import and after each training (apps/evidence/suggestions.py), stored so
    # that lists read it with the row. Advice only: nothing is linked until the owner says.
    suggestions = models.JSONField(default=list, blank=True, editable=False)
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


class LadderChange(models.TextChoices):
    NONE = "", "Unchanged"
    REMOVED = "removed", "Removed from the ladder"
    REWORDED = "reworded", "Reworded"


class EvidenceLink(models.Model):
    LadderChange = LadderChange

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
    # What the link was made against: the expectation (its version and its text, which a
    # published version never changes) the engineer or the suggestion chose. Publishing a
    # new version moves `expectation` to the one with the same code and leaves this alone
    # (services.evidence_links_follow_version); null for a deliverable link.
    made_against = models.ForeignKey(
        "ladders.Expectation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # What publishing did to the expectation since it was made against: nothing (""),
    # removed (no expectation with that code any more: the link stays on the old one) or
    # reworded (same code, other text, level or competency).
    ladder_change = models.CharField(
        max_length=16, choices=LadderChange.choices, blank=True, default=""
    )

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


class EvidenceVerification(models.Model):
    """An imported item's last check against its live ServiceNow record ("Verify", on the
    item or on a packet holding it): written by apps/evidence/verification.py only."""

    class Result(models.TextChoices):
        MATCH = "match", "Matches ServiceNow"
        CHANGED = "changed", "Changed in ServiceNow"
        DELETED = "deleted", "Deleted in ServiceNow"

    evidence = models.OneToOneField(
        Evidence, on_delete=models.CASCADE, primary_key=True, related_name="verification"
    )
    result = models.CharField(max_length=16, choices=Result.choices)
    # [{"field", "snapshot", "live"}] for a change; empty otherwise
    diff = models.JSONField(default=list, blank=True)
    # the hash of the snapshot the live record was compared with: the item's own, or the
    # copy a packet snapshot froze (they differ once a sync refreshed the item)
    compared_sha256 = models.CharField(max_length=64)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    verified_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.evidence_id} {self.result} {self.verified_at:%Y-%m-%d %H:%M}"


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


class SuggestionModel(models.Model):
    """One trained version of a ladder's learned suggestions (apps/evidence/suggestions.py):
    how it did on held-out items, and the model itself, serialized by joblib. Only
    suggestions_train writes rows; the newest version is the one in use."""

    ladder = models.ForeignKey(
        "ladders.Ladder", on_delete=models.CASCADE, related_name="suggestion_models"
    )
    version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    training_size = models.PositiveIntegerField(help_text="Labelled items it learned from.")
    negatives = models.PositiveIntegerField(
        default=0, help_text="Dismissed items and accepted ones with a suggestion removed."
    )
    codes = models.PositiveIntegerField(default=0, help_text="Expectation codes it ranks.")
    held_out = models.PositiveIntegerField(default=0, help_text="Items kept out to test it.")
    accuracy_top1 = models.FloatField(null=True, blank=True)
    accuracy_top3 = models.FloatField(null=True, blank=True)
    training_seconds = models.FloatField(default=0)
    blob = models.BinaryField(editable=False)
    sha256 = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["ladder", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["ladder", "version"], name="suggestion_model_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.ladder_id} v{self.version}"


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
