"""The packet links of the main navigation, by role: My packets (anyone with a profile),
Reviews with the number waiting (managers), Committee (committee members), Cycles (admins)."""

from django import template

from apps.packets.selectors import packet_review_count

register = template.Library()


@register.inclusion_tag("packets/_nav.html", takes_context=True)
def packets_nav(context):
    viewer = context.get("viewer")
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    here = match.url_name if match and match.app_name == "packets" else None
    if viewer is None:
        return {"viewer": None}
    person = viewer.person
    is_manager = bool(person) and viewer.is_manager
    return {
        "viewer": viewer,
        "here": here,
        "has_person": person is not None,
        "is_manager": is_manager,
        "review_count": packet_review_count(person=person) if is_manager else 0,
        "is_committee": viewer.is_committee,
        "is_admin": viewer.is_admin,
    }
