"""Packet exports: the coverage chart (server-rendered SVG), Markdown, JSON and PDF.

All of them render from one dict — a PacketSnapshot's data, or the same shape built live
for a draft (services.packet_snapshot_data) — so every format says the same thing.
"""

from __future__ import annotations

import csv
import io
import json
from html import escape

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string

from .selectors import (
    LIVE_ITEM_KEYS,
    packet_data_for_reader,
    packet_data_with_corroborations,
    packet_source_flags,
)
from .services import packet_snapshot_data

BAR_W, BAR_H, GAP, LABEL_W = 260, 18, 10, 230


def coverage_svg(coverage: dict) -> str:
    """Horizontal bars: one per competency and one overall, with percentages."""
    rows = [*coverage.get("by_competency", {}).items(), ("Overall", coverage.get("overall", 0))]
    height = len(rows) * (BAR_H + GAP) + GAP
    width = LABEL_W + BAR_W + 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Coverage by competency">',
    ]
    # presentation attributes, not a <style> element: pages carry a CSP (style-src 'self')
    text = 'font-family="sans-serif" font-size="12" fill="#1d2330"'
    for i, (name, fraction) in enumerate(rows):
        y = GAP + i * (BAR_H + GAP)
        filled = max(0.0, min(1.0, float(fraction))) * BAR_W
        colour = "#2e7d32" if fraction >= 1 else "#e0b300" if fraction >= 0.5 else "#c62828"
        parts += [
            f'<text x="0" y="{y + 13}" {text}>{escape(name)}</text>',
            f'<rect x="{LABEL_W}" y="{y}" width="{BAR_W}" height="{BAR_H}" fill="#eef1f6"/>',
            f'<rect x="{LABEL_W}" y="{y}" width="{filled:.1f}" height="{BAR_H}" fill="{colour}"/>',
            f'<text x="{LABEL_W + BAR_W + 8}" y="{y + 13}" {text}>'
            f"{round(float(fraction) * 100)}%</text>",
        ]
    parts.append("</svg>")
    return "".join(parts)


def packet_markdown(data: dict) -> str:
    lines = [
        f"# Promotion packet: {data['person']['name']} → level {data['target_level']}",
        "",
        f"- Cycle: {data['cycle']['name']}",
        f"- Ladder: {data['ladder']['slug']} v{data['ladder']['version']}",
        f"- From level: {data.get('from_level') or '—'}",
        f"- Coverage: {round(data['coverage']['overall'] * 100)}%",
    ]
    for name, fraction in data["coverage"]["by_competency"].items():
        lines.append(f"  - {name}: {round(fraction * 100)}%")
    if data["coverage"].get("gaps"):
        lines.append(f"- Gaps: {', '.join(data['coverage']['gaps'])}")
    changes = data.get("source_changes") or {}
    if changes.get("deleted") or changes.get("changed"):
        lines.append(
            f"- ServiceNow since this snapshot: {changes.get('deleted', 0)} deleted, "
            f"{changes.get('changed', 0)} changed"
        )
    narratives = data.get("narratives") or {}
    by_comp: dict[str, list[dict]] = {}
    for exp in data["expectations"]:
        by_comp.setdefault(exp["competency"], []).append(exp)
    for competency, expectations in by_comp.items():
        lines += ["", f"## {competency}", ""]
        if narratives.get(competency):
            lines += [narratives[competency].strip(), ""]
        for exp in expectations:
            mark = "✓" if exp["items"] else "gap"
            lines.append(f"### {exp['code']} {exp['text']} ({mark})")
            for item in exp["items"]:
                link = item.get("url") or (item.get("work_item") or {}).get("url") or ""
                when = item.get("occurred_on") or ""
                title = f"[{item['title']}]({link})" if link else item["title"]
                if item.get("withheld"):
                    title = f"_{item['title']}_"
                lines.append(f"- {when} {title}".replace("  ", " "))
                if item.get("note"):
                    lines.append(f"  - Note: {item['note']}")
                for c in item.get("corroborations") or ():
                    said = f": {c['comment']}" if c.get("comment") else ""
                    lines.append(f"  - {c['state'].capitalize()} by {c['name']}{said}")
                wi = item.get("work_item")
                if wi:
                    lines.append(
                        f"  - ServiceNow {wi.get('table')} {wi.get('number')}: {wi.get('url')}"
                    )
                lines += [f"  - **{flag}**" for flag in item_source_notes(item)]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def item_source_notes(item: dict) -> list[str]:
    """What the exports say about an item's ServiceNow record now (packet_source_flags)."""
    notes = []
    if item.get("work_item_deleted"):
        notes.append("Deleted in ServiceNow")
    if item.get("work_item_changed"):
        notes.append("Changed in ServiceNow since this snapshot")
    last = item.get("last_verification")
    if last:
        when = last["at"].strftime("%Y-%m-%d %H:%M") if hasattr(last["at"], "strftime") else ""
        notes.append(f"Last verified {when} UTC by {last['by'] or 'someone'}: {last['result']}")
    return notes


def packet_data_frozen(data: dict) -> dict:
    """An export's data without what packet_source_flags added (`source_changes`, and each
    item's LIVE_ITEM_KEYS): the snapshot as stored, whose canonical sha256 is the one the
    export names. (For a withheld item, the withheld copy.)"""
    out = {k: v for k, v in data.items() if k != "source_changes"}
    out["expectations"] = [
        {
            **exp,
            "items": [
                {k: v for k, v in item.items() if k not in LIVE_ITEM_KEYS}
                for item in exp.get("items", [])
            ],
        }
        for exp in data.get("expectations", [])
    ]
    return out


def packet_json(data: dict) -> str:
    # DjangoJSONEncoder: the live `last_verification.at` is a datetime (ISO 8601 out)
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, cls=DjangoJSONEncoder)


def packet_html(data: dict, *, sha256: str | None = None) -> str:
    by_comp: dict[str, list[dict]] = {}
    for exp in data["expectations"]:
        by_comp.setdefault(exp["competency"], []).append(exp)
    return render_to_string(
        "packets/export.html",
        {
            "data": data,
            "by_competency": by_comp,
            "chart": coverage_svg(data["coverage"]),
            "sha256": sha256,
        },
    )


def packet_pdf(data: dict, *, sha256: str | None = None) -> bytes:
    from weasyprint import HTML  # imported here: heavy, and only exports need it

    return HTML(string=packet_html(data, sha256=sha256)).write_pdf()


# --- responses (the API and the pages answer the same files) -----------------------------

EXPORT_FORMATS = ("pdf", "md", "json")


def packet_export_data(packet, number: int | None, *, viewer) -> tuple[dict, str | None, str]:
    """A given snapshot, else the latest one, else (a draft never submitted) the live packet,
    as `viewer` may read it (selectors.packet_data_for_reader: private items withheld), with
    each item's ServiceNow flags as they are now (selectors.packet_source_flags: deleted,
    changed since the snapshot, last verification). Returns (data, sha256 or None, file
    label); sha256 is the stored snapshot's, over its data without those live keys."""
    snaps = packet.snapshots.order_by("-number")
    snap = get_object_or_404(snaps, number=number) if number else snaps.first()
    if snap is not None:
        data, sha, label = snap.data, snap.sha256, f"packet-{packet.pk}-v{snap.number}"
    else:
        data, sha, label = packet_snapshot_data(packet=packet), None, f"packet-{packet.pk}-draft"
    data = packet_data_for_reader(viewer=viewer, packet=packet, data=data)
    return packet_data_with_corroborations(packet_source_flags(data=data)), sha, label


def export_response(data: dict, sha: str | None, label: str, fmt: str) -> HttpResponse:
    if fmt == "pdf":
        response = HttpResponse(packet_pdf(data, sha256=sha), content_type="application/pdf")
    elif fmt == "md":
        response = HttpResponse(packet_markdown(data), content_type="text/markdown; charset=utf-8")
    else:
        response = HttpResponse(packet_json(data), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{label}.{fmt}"'
    return response


CYCLE_REPORT_FIELDS = ["target_level", "state", "count"]


def cycle_report_csv_response(cycle, rows: list[dict]) -> HttpResponse:
    """The cycle report (selectors.cycle_report_rows) as a CSV download."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CYCLE_REPORT_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="cycle-{cycle.pk}.csv"'
    return response
