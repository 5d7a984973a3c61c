"""Promotion cycles and packets: assembled by an engineer for a target level, pinned to a
ladder version, reviewed by their managers, decided by the committee.

State rules live in services.py (DESIGN.md "Packet states"); PacketEvent is the timeline.
"""

from django.conf import settings
from django.db import models

from ladder_tracker.history import audited_history


class PromotionCycle(models.Model):
    name = models.CharField(max_length=100, unique=True)
    opens_on = models.DateField()
    # Submissions are accepted until this moment (admins may move it to extend).
    submission_deadline = models.DateTimeField()
    decision_on = models.DateField()
    min_coverage = models.DecimalField(max_digits=4, decimal_places=3, default=0)  # 0..1
    created_at = models.DateTimeField(auto_now_add=True)

    history = audited_history()  # who moved a deadline or the minimum (ladder_tracker/history.py)

    class Meta:
        ordering = ["-opens_on", "name"]

    def __str__(self) -> str:
        return self.name


class Packet(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"
        ENDORSED = "endorsed", "Endorsed"
        DECLINED = "declined", "Declined"
        PROMOTED = "promoted", "Promoted"
        NOT_PROMOTED = "not_promoted", "Not promoted"
        WITHDRAWN = "withdrawn", "Withdrawn"

    OPEN_STATES = (State.DRAFT, State.SUBMITTED, State.CHANGES_REQUESTED, State.ENDORSED)
    EDITABLE_STATES = (State.DRAFT, State.CHANGES_REQUESTED)
    COMMITTEE_STATES = (State.ENDORSED, State.PROMOTED, State.NOT_PROMOTED)

    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="packets")
    cycle = models.ForeignKey(PromotionCycle, on_delete=models.PROTECT, related_name="packets")
    ladder_version = models.ForeignKey(
        "ladders.LadderVersion", on_delete=models.PROTECT, related_name="packets"
    )
    from_level = models.PositiveSmallIntegerField(null=True, blank=True)
    target_level = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)
    narratives = models.JSONField(default=dict, blank=True)  # {competency name: Markdown}
    narratives_html = models.JSONField(default=dict, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            # one live packet per person and cycle; withdrawn/decided ones don't count
            models.UniqueConstraint(
                fields=["person", "cycle"],
                condition=models.Q(
                    state__in=["draft", "submitted", "changes_requested", "endorsed"]
                ),
                name="packet_one_open_per_person_cycle",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.person} → L{self.target_level} ({self.cycle}, {self.state})"


class PacketItem(models.Model):
    """One piece of evidence offered for one expectation of the target level."""

    packet = models.ForeignKey(Packet, on_delete=models.CASCADE, related_name="items")
    expectation = models.ForeignKey("ladders.Expectation", on_delete=models.PROTECT)
    evidence = models.ForeignKey("evidence.Evidence", on_delete=models.PROTECT)
    note = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["packet", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["packet", "expectation", "evidence"], name="packet_item_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.packet_id}: {self.expectation_id} ← {self.evidence_id}"


class PacketSnapshot(models.Model):
    """The whole packet frozen at a submission; reviewers read this, not the live rows."""

    packet = models.ForeignKey(Packet, on_delete=models.CASCADE, related_name="snapshots")
    number = models.PositiveIntegerField()
    data = models.JSONField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["packet", "number"]
        constraints = [
            models.UniqueConstraint(fields=["packet", "number"], name="packet_snapshot_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.packet_id} #{self.number} {self.sha256[:12]}"


class Assessment(models.Model):
    class Rating(models.TextChoices):
        BELOW = "below", "Below"
        MEETS = "meets", "Meets"
        EXCEEDS = "exceeds", "Exceeds"

    packet = models.ForeignKey(Packet, on_delete=models.CASCADE, related_name="assessments")
    reviewer = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="+")
    expectation = models.ForeignKey("ladders.Expectation", on_delete=models.PROTECT)
    rating = models.CharField(max_length=10, choices=Rating.choices)
    comment = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["packet", "reviewer", "expectation"], name="assessment_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.packet_id} {self.expectation_id}: {self.rating}"


class Decision(models.Model):
    class Outcome(models.TextChoices):
        PROMOTED = "promoted", "Promoted"
        NOT_PROMOTED = "not_promoted", "Not promoted"

    packet = models.OneToOneField(Packet, on_delete=models.CASCADE, related_name="decision")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    rationale = models.TextField()
    decided_by = models.ForeignKey("people.Person", on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.packet_id}: {self.outcome}"


class PacketEvent(models.Model):
    packet = models.ForeignKey(Packet, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    action = models.CharField(max_length=32)
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    comment = models.TextField(blank=True)
    # What an event that moves no state changed: a "reassess" event (a reviewer changed an
    # assessment they had saved) holds {"expectation", "reviewer", "before": {"rating",
    # "comment"}, "after": {…}}; its from/to states stay blank, so nothing that reads
    # state changes (reminders, analytics) takes it for one.
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    REASSESS = "reassess"

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.packet_id} {self.from_state} → {self.to_state}"
