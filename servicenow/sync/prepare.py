"""A page of work items made ready to store: every value in the database's own form, with
no database and no Django, so that it can run in the process that fetches (pipeline.py) as
well as in the run's own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import NamedTuple

from apps.evidence.itemtext import work_item_text
from ladder_tracker.canonical import json_text, snapshot_sha256

from ..client import field_display, field_value, record_url
from ..query import format_timestamp
from .fields import DISPLAY_FIELDS, SNAPSHOT_FIELDS
from .paging import Newest, PreparedPage, newest_per_sys_id, parse_ts, ts_value


class CandidateBase(NamedTuple):
    """What every candidate of one record shares, whoever owns it: made while the page is
    prepared, so in the fetching process when there is one."""

    title: str
    occurred: datetime
    occurred_on: date
    snapshot: dict
    snapshot_sha256: str
    text: str  # as the suggestion models read it (apps/evidence/itemtext.py)


class PreparedRow(NamedTuple):
    raw: dict  # {field: value} as stored in WorkItem.raw
    attributions: dict  # {attribution field: user sys_id}
    values: list  # database values in workitems.COLUMNS order
    display: dict  # {field: label} where the instance has one (DISPLAY_FIELDS)
    candidate: CandidateBase | None = None  # for a record someone may own (attributed)
    # {person id: ranked suggestions} for the owners the preparing process knew of
    suggested: dict | None = None


def work_item_snapshot(
    *, instance_url: str, table: str, sys_id: str, raw: dict, updated_on, display=None
) -> dict:
    """What an evidence item keeps of its record: the stored values, and the labels the
    instance shows for them (`display`, e.g. {"state": "Resolved"}) when it sent any."""
    snap = {f: raw.get(f, "") for f in SNAPSHOT_FIELDS}
    if display:
        snap["display"] = dict(display)
    snap.update(
        table=table,
        sys_id=sys_id,
        sys_updated_on=format_timestamp(updated_on),
        url=record_url(instance_url, table, sys_id),
    )
    return snap


def work_item_occurred(*, resolved_at, closed_at, opened_at, updated_on) -> datetime:
    """When the work happened, as far as the record tells."""
    return resolved_at or closed_at or opened_at or updated_on


def candidate_base(*, snapshot: dict, raw: dict, occurred: datetime) -> CandidateBase:
    number, text = raw.get("number", "")[:40], raw.get("short_description", "")
    return CandidateBase(
        title=(f"{number}: {text}" if number else text) or snapshot["sys_id"],
        occurred=occurred,
        occurred_on=occurred.date(),
        snapshot=snapshot,
        snapshot_sha256=snapshot_sha256(snapshot),
        text=work_item_text(table=snapshot.get("table", ""), raw=raw),
    )


def record_candidate_base(
    *, instance_url: str, table: str, sys_id: str, raw: dict, updated_on, display
) -> CandidateBase:
    """The candidate base of a record as a page brought it."""
    snapshot = work_item_snapshot(
        instance_url=instance_url,
        table=table,
        sys_id=sys_id,
        raw=raw,
        updated_on=updated_on,
        display=display,
    )
    occurred = work_item_occurred(
        resolved_at=ts_value(raw.get("resolved_at")),
        closed_at=ts_value(raw.get("closed_at")),
        opened_at=ts_value(raw.get("opened_at")),
        updated_on=updated_on,
    )
    return candidate_base(snapshot=snapshot, raw=raw, occurred=occurred)


@dataclass(frozen=True)
class PrepareSpec:
    """What preparing a source's pages needs to know (plain data: it is pickled to the
    fetching process)."""

    connection_id: int
    source_id: int
    table: str
    fields: tuple[str, ...]
    attribution_fields: tuple[str, ...]
    labels: dict | None  # {field: {value: label}} from sys_choice; None: rows carry labels
    # SQLite keeps a timestamp as its naive UTC text (the Table API's own format);
    # PostgreSQL's driver takes the aware datetime.
    timestamps_as_text: bool
    # Where record links point; with it, the records the synced people own (`people`:
    # {ServiceNow user sys_id: (person id, ladder id, level)}; None: any attributed record)
    # get their candidate base, and with `suggesters` ({ladder id: LadderSuggester}) their
    # owners' ranked suggestions: the fetching process's spec (workitems.spec_for_process).
    instance_url: str = ""
    people: dict | None = None
    suggesters: dict | None = None


class Preparer:
    """Prepares pages for one spec; holds a small cache of the timestamps pages share."""

    def __init__(self, spec: PrepareSpec):
        self.spec = spec
        as_text = spec.timestamps_as_text

        def db_datetime(value: datetime):
            # Django's own adapters, without Django: SQLite's is str() of the naive UTC value.
            if as_text:
                return str(value.astimezone(UTC).replace(tzinfo=None))
            return value

        @lru_cache(maxsize=4096)
        def timestamp(raw: str):
            if not raw:
                return None
            parsed = parse_ts(raw)  # raises on anything but YYYY-MM-DD HH:MM:SS
            if as_text and len(raw) == 19:
                return raw  # exactly the stored form (parse_timestamp strips padding)
            return db_datetime(parsed)

        self.timestamp = timestamp
        self.datetime = db_datetime

    def prepare(self, rows: list[dict], *, suggest: bool = True) -> PreparedPage:
        """Everything about a page that needs no database: values ready for the upsert."""
        spec = self.spec
        db_ts, db_json = self.timestamp, json_text
        now = self.datetime(datetime.now(UTC))
        connection_id, source_id, table = spec.connection_id, spec.source_id, spec.table
        fields, attribution_fields, labels = spec.fields, spec.attribution_fields, spec.labels
        people = spec.people
        newest = newest_per_sys_id(rows)
        for sys_id, (ts, mod, row) in newest.items():
            raw = {f: field_value(row[f]) for f in fields if f in row}
            if labels is None:  # pages came with display values
                display = {
                    f: label
                    for f in DISPLAY_FIELDS
                    if f in row and (label := field_display(row[f])) and label != raw[f]
                }
            else:
                display = {
                    f: label
                    for f in DISPLAY_FIELDS
                    if f in raw and (label := labels.get(f, {}).get(raw[f])) and label != raw[f]
                }
            attributions = {f: raw[f] for f in attribution_fields if raw.get(f)}
            values = [
                connection_id,
                source_id,
                table,
                sys_id,
                raw.get("number", "")[:40],
                raw.get("short_description", ""),
                raw.get("state", "")[:40],
                raw.get("priority", "")[:40],
                db_ts(raw.get("opened_at", "")),
                db_ts(raw.get("resolved_at", "")),
                db_ts(raw.get("closed_at", "")),
                None,  # person_id: set by store, which knows people
                db_json(attributions),
                db_ts(raw["sys_updated_on"]),
                mod,
                db_json(raw),
                None,
                "",
                now,
                now,
            ]
            candidate = None
            if (
                spec.instance_url
                and attributions
                and (people is None or any(v in people for v in attributions.values()))
            ):
                candidate = record_candidate_base(
                    instance_url=spec.instance_url,
                    table=table,
                    sys_id=sys_id,
                    raw=raw,
                    updated_on=ts,
                    display=display,
                )
            row_out = PreparedRow(raw, attributions, values, display, candidate)
            newest[sys_id] = Newest(ts, mod, row_out)
        if suggest and spec.people and spec.suggesters:
            self._suggest(newest)
        return PreparedPage(count=len(rows), newest=newest)

    def _suggest(self, newest: dict) -> None:
        """Each known owner's ranked suggestions, batched per ladder as
        apps.evidence.candidates does for a candidate with no rule links."""
        from apps.evidence.suggestions import ItemToSuggest  # Django: set up by the caller

        people, suggesters = self.spec.people, self.spec.suggesters
        by_ladder: dict[int, list[tuple[str, int, ItemToSuggest]]] = {}
        for sys_id, version in newest.items():
            row = version.data
            if row.candidate is None:
                continue
            owners = dict.fromkeys(people[v] for v in row.attributions.values() if v in people)
            for person_id, ladder_id, level in owners:
                if ladder_id in suggesters:
                    item = ItemToSuggest(person_id, level, row.candidate.text, ())
                    by_ladder.setdefault(ladder_id, []).append((sys_id, person_id, item))
        suggested: dict[str, dict[int, list[dict]]] = {}
        for ladder_id, entries in by_ladder.items():
            ranked = suggesters[ladder_id].suggest([item for _s, _p, item in entries])
            for (sys_id, person_id, _item), suggestions in zip(entries, ranked, strict=True):
                suggested.setdefault(sys_id, {})[person_id] = suggestions
        for sys_id, by_person in suggested.items():
            version = newest[sys_id]
            newest[sys_id] = version._replace(data=version.data._replace(suggested=by_person))
