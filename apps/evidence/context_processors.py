"""The Inbox badge in the navigation: imported candidates waiting for their owner's triage."""

from functools import cached_property

from apps.people.context_processors import Viewer, request_viewer

from .selectors import evidence_inbox_count


class InboxBadge:
    """Lazy: a page that never shows the badge costs no query."""

    def __init__(self, viewer: Viewer):
        self.viewer = viewer

    @cached_property
    def count(self) -> int:
        if self.viewer.person is None:
            return 0
        return evidence_inbox_count(person=self.viewer.person)


def inbox(request):
    found = request_viewer(request)
    return {} if found is None else {"inbox": InboxBadge(found)}
