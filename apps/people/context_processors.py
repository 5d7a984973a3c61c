"""Who is looking: drives the role-aware navigation and the 'your next level' highlight."""

from functools import cached_property

from .selectors import person_for_user, person_has_reports


class Viewer:
    """Lazy: a page that never asks costs no query."""

    def __init__(self, user):
        self.user = user

    @cached_property
    def person(self):
        return person_for_user(user=self.user)

    @cached_property
    def is_manager(self) -> bool:
        return bool(self.person and person_has_reports(person=self.person))

    @property
    def is_committee(self) -> bool:
        return bool(self.person and self.person.is_committee)

    @property
    def is_admin(self) -> bool:
        return self.user.is_staff

    @cached_property
    def inbox_count(self) -> int:
        """Imported candidates waiting for triage: the Inbox badge in the navigation."""
        if self.person is None:
            return 0
        from apps.evidence.selectors import evidence_inbox_count  # evidence builds on people

        return evidence_inbox_count(person=self.person)


def viewer(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"viewer": Viewer(user)}
