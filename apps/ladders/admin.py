"""Admin for ladders. Published versions are read-only here, as everywhere."""

from django.contrib import admin

from .models import Competency, Deliverable, Expectation, Ladder, LadderVersion, Skill, Statement


class _ReadOnlyWhenPublished:
    """Children of a published version cannot be changed or deleted."""

    def _version_of(self, obj):
        return obj if isinstance(obj, LadderVersion) else getattr(obj, "version", None)

    def has_change_permission(self, request, obj=None):
        version = self._version_of(obj) if obj else None
        if version is not None and version.is_published:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        version = self._version_of(obj) if obj else None
        if version is not None and version.is_published:
            return False
        return super().has_delete_permission(request, obj)


class ExpectationInline(_ReadOnlyWhenPublished, admin.TabularInline):
    model = Expectation
    fields = ("code", "competency", "level", "text", "level_inferred")
    extra = 0
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return not (obj and obj.is_published) and super().has_add_permission(request, obj)


@admin.register(Ladder)
class LadderAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    search_fields = ("name", "slug")


@admin.register(LadderVersion)
class LadderVersionAdmin(_ReadOnlyWhenPublished, admin.ModelAdmin):
    list_display = ("ladder", "number", "status", "published_at", "created_at")
    list_filter = ("ladder", "status")
    readonly_fields = ("content_sha256", "published_at", "created_at", "status")
    inlines = [ExpectationInline]


@admin.register(Expectation)
class ExpectationAdmin(_ReadOnlyWhenPublished, admin.ModelAdmin):
    list_display = ("code", "text", "level", "competency", "version", "level_inferred")
    list_filter = ("version__ladder", "version", "competency__code", "level__number")
    search_fields = ("code", "text")
    list_select_related = ("level", "competency", "version__ladder")


for model in (Competency, Deliverable, Statement, Skill):
    admin.site.register(
        model, type(f"{model.__name__}Admin", (_ReadOnlyWhenPublished, admin.ModelAdmin), {})
    )
