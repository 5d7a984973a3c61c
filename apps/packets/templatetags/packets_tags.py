"""Small display helpers of the packet pages."""

from django import template

from apps.packets.models import Packet

register = template.Library()


@register.filter
def state_label(value: str) -> str:
    try:
        return Packet.State(value).label
    except ValueError:
        return value


@register.filter
def percent(value) -> str:
    """A 0..1 fraction as a whole percentage ("—" when unknown)."""
    if value is None or value == "":
        return "—"
    return f"{round(float(value) * 100)}%"
