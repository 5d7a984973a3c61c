"""Admin for people. Changes to an existing person go through person_update, like the API:
the level history, the org-chart checks and the audit trail apply here too."""

from django import forms
from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from .models import Person
from .services import PERSON_UPDATE_FIELDS, person_update, person_update_check


class PersonAdminForm(forms.ModelForm):
    # no Meta: the admin builds the form for Person with the fields it shows

    def service_changes(self) -> dict:
        return {n: self.cleaned_data[n] for n in self.changed_data if n in PERSON_UPDATE_FIELDS}

    def clean(self):
        data = super().clean()
        if self.instance.pk and not self.errors:
            stored = Person.objects.get(pk=self.instance.pk)
            person_update_check(person=stored, fields=self.service_changes())
        return data


@admin.register(Person)
class PersonAdmin(SimpleHistoryAdmin):  # "History": who changed what
    form = PersonAdminForm
    list_display = ("name", "email", "ladder", "level", "manager", "is_committee", "is_active")
    list_filter = ("ladder", "level", "is_committee", "is_active")
    search_fields = ("name", "email", "user__username", "servicenow_sys_id")
    list_select_related = ("ladder", "manager")
    autocomplete_fields = ("user", "manager")

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        updates = form.service_changes()
        others = {n: form.cleaned_data[n] for n in form.changed_data if n not in updates}
        if others:
            Person.objects.filter(pk=obj.pk).update(**others)
        if updates:
            person_update(person=obj, actor=request.user, reason="changed in the admin", **updates)
        obj.refresh_from_db()
