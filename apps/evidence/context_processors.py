"""The navigation's badges: imported candidates waiting for their owner's triage (Inbox) and
corroboration requests waiting on the viewer, both from one query."""

from functools import cached_property

from apps.people.context_processors import Viewer, request_viewer

from .selectors import nav_counts


class InboxBadge:
    """Lazy: a page that never shows the badge costs no query."""

    def __init__(self, viewer: Viewer):
        self.viewer = viewer

    @cached_property
    def _counts(self) -> tuple[int, int]:
        if self.viewer.person is None:
            return (0, 0)
        return nav_counts(person=self.viewer.person)

    @property
    def count(self) -> int:
        return self._counts[0]

    @property
    def corroborations(self) -> int:
        return self._counts[1]


def inbox(request):
    found = request_viewer(request)
    return {} if found is None else {"inbox": InboxBadge(found)}
