"""Filters of the ServiceNow API (NetBox's `<Model>FilterSet` shape)."""

import django_filters

from .models import WorkItem


class WorkItemFilterSet(django_filters.FilterSet):
    # Plain numbers, not model choices: a choice filter answers 400 for an id that does not
    # exist and 200 for one that does, which would tell a reader which sources and people
    # exist outside their scope. Here an unknown id is simply an empty page.
    source = django_filters.NumberFilter(field_name="source_id", help_text="A source id.")
    person = django_filters.NumberFilter(field_name="person_id", help_text="A person id.")
    table = django_filters.CharFilter(field_name="table", help_text="e.g. incident")

    class Meta:
        model = WorkItem
        fields = ["source", "table", "person"]
