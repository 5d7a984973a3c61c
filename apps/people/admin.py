from django.contrib import admin

from .models import Person


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "ladder", "level", "manager", "is_committee", "is_active")
    list_filter = ("ladder", "level", "is_committee", "is_active")
    search_fields = ("name", "email", "user__username", "servicenow_sys_id")
    list_select_related = ("ladder", "manager")
    autocomplete_fields = ("user", "manager")
