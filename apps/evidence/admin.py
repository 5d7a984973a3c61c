from django.contrib import admin

from .models import Corroboration, Evidence, EvidenceLink, EvidenceVerification, SuggestionModel


class EvidenceLinkInline(admin.TabularInline):
    model = EvidenceLink
    extra = 0
    raw_id_fields = ("expectation", "deliverable", "made_against")
    # set by publishing a ladder version (services.evidence_links_follow_version)
    readonly_fields = ("ladder_change",)


class EvidenceVerificationInline(admin.StackedInline):
    """The item's last Verify against ServiceNow: written by apps/evidence/verification.py
    only, so read-only here."""

    model = EvidenceVerification
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "result",
        "diff",
        "compared_sha256",
        "verified_by",
        "verified_at",
    )

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Evidence)
class EvidenceAdmin(admin.ModelAdmin):
    list_display = ("title", "person", "source", "status", "visibility", "occurred_on")
    list_filter = ("source", "status", "visibility")
    search_fields = ("title", "person__name", "work_item__number")
    list_select_related = ("person",)
    raw_id_fields = ("person", "work_item")
    readonly_fields = (
        "snapshot",
        "snapshot_sha256",
        "suggestions",
        "snapshot_updated_at",
        "created_at",
        "updated_at",
    )
    inlines = [EvidenceLinkInline, EvidenceVerificationInline]


@admin.register(SuggestionModel)
class SuggestionModelAdmin(admin.ModelAdmin):
    """Trained versions, read only: `manage.py suggestions_train` and the nightly beat task
    make them; the blob is never shown."""

    list_display = (
        "ladder",
        "version",
        "created_at",
        "training_size",
        "codes",
        "accuracy_top1",
        "accuracy_top3",
        "training_seconds",
    )
    list_filter = ("ladder",)
    exclude = ("blob",)
    readonly_fields = (
        "ladder",
        "version",
        "created_at",
        "training_size",
        "negatives",
        "codes",
        "held_out",
        "accuracy_top1",
        "accuracy_top3",
        "training_seconds",
        "sha256",
    )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Corroboration)
class CorroborationAdmin(admin.ModelAdmin):
    list_display = ("evidence", "person", "asked_by", "state", "created_at", "answered_at")
    list_filter = ("state",)
    search_fields = ("evidence__title", "person__name", "asked_by__name")
    list_select_related = ("evidence", "person", "asked_by")
    raw_id_fields = ("evidence", "person", "asked_by")
    readonly_fields = ("created_at", "answered_at")
