"""Stored hashes, recomputed: every packet snapshot's sha256, the per-item hashes inside it,
and every imported evidence item's `snapshot_sha256` (`manage.py verify_snapshots`).

Reads only, in batches (memory stays flat however many rows). Each hash is recomputed with
ladder_tracker.canonical, the one canonical form every writer uses. A snapshot frozen before
items carried hashes has none to check: it is counted (`legacy_items`), never a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apps.evidence.models import Evidence
from ladder_tracker.canonical import canonical_sha256, snapshot_sha256

from .models import PacketSnapshot

BATCH = 200


@dataclass
class HashReport:
    snapshots: int = 0  # packet snapshots checked
    items: int = 0  # items inside them whose hash was checked
    legacy_items: int = 0  # items of older snapshots, without a hash to check
    evidence: int = 0  # evidence items with a snapshot checked
    mismatches: list[str] = field(default_factory=list)  # one line each: which and how

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        return (
            f"{self.snapshots} packet snapshots, {self.items} snapshot items "
            f"({self.legacy_items} older items without a hash), {self.evidence} evidence "
            f"snapshots checked: {len(self.mismatches)} mismatch"
            f"{'' if len(self.mismatches) == 1 else 'es'}"
        )


def _batches(qs):
    last = 0
    while True:
        rows = list(qs.filter(pk__gt=last).order_by("pk")[:BATCH])
        if not rows:
            return
        yield from rows
        last = rows[-1].pk


def packet_snapshots_check(report: HashReport) -> None:
    for snap in _batches(
        PacketSnapshot.objects.only("pk", "packet_id", "number", "data", "sha256")
    ):
        report.snapshots += 1
        where = f"packet {snap.packet_id} snapshot #{snap.number} (id {snap.pk})"
        computed = canonical_sha256(snap.data)
        if computed != snap.sha256:
            report.mismatches.append(
                f"{where}: sha256 is {snap.sha256}, its data hashes to {computed}"
            )
        data = snap.data if isinstance(snap.data, dict) else {}
        for exp in data.get("expectations") or []:
            for item in exp.get("items") or []:
                if "snapshot_sha256" not in item:
                    report.legacy_items += 1
                    continue
                report.items += 1
                held = snapshot_sha256(item.get("work_item"))
                if held != item["snapshot_sha256"]:
                    report.mismatches.append(
                        f"{where}, {exp.get('code')} evidence {item.get('evidence')}: item "
                        f"snapshot_sha256 is {item['snapshot_sha256']}, its record copy hashes "
                        f"to {held}"
                    )


def evidence_snapshots_check(report: HashReport) -> None:
    rows = Evidence.objects.exclude(snapshot={}, snapshot_sha256__isnull=True).only(
        "pk", "snapshot", "snapshot_sha256"
    )
    for ev in _batches(rows):
        report.evidence += 1
        computed = snapshot_sha256(ev.snapshot)
        if computed != ev.snapshot_sha256:
            report.mismatches.append(
                f"evidence {ev.pk}: snapshot_sha256 is {ev.snapshot_sha256}, its snapshot "
                f"hashes to {computed}"
            )


def stored_hashes_check() -> HashReport:
    """Every stored hash recomputed; the report lists each mismatch."""
    report = HashReport()
    packet_snapshots_check(report)
    evidence_snapshots_check(report)
    return report
