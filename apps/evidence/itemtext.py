"""The text of a work item as the suggestion models read it. No Django here: the sync's
fetching process (servicenow/sync/pipeline.py) computes it beside the page it prepares."""

from __future__ import annotations

import re

# Fields read as prose (their words are features); any other field with a short value is a
# categorical token (`category__network`), a long one is prose too.
PROSE_FIELDS = frozenset(
    {
        "short_description",
        "description",
        "close_notes",
        "comments",
        "work_notes",
        "resolution_notes",
        "justification",
        "implementation_plan",
        "test_plan",
        "backout_plan",
        "risk_impact_analysis",
    }
)
# Never features: identity (who did it is the person the suggestion is for, not a property
# of the work), record keys, counters and timestamps.
SKIPPED_FIELDS = frozenset(
    {
        "number",
        "assigned_to",
        "opened_by",
        "caller_id",
        "closed_by",
        "resolved_by",
        "requested_by",
        "requested_for",
        "watch_list",
    }
)
CATEGORICAL_MAX_CHARS = 100
_NOT_WORD = re.compile(r"\W+")


def _token(value: str) -> str:
    return _NOT_WORD.sub("_", value.strip().lower()).strip("_")


def _skipped(key: str) -> bool:
    return (
        key in SKIPPED_FIELDS
        or key.startswith("sys_")
        or key.endswith("_at")
        or key.endswith("_on")
        or key.endswith("_count")
    )


def work_item_text(*, table: str, raw: dict) -> str:
    """What the models read of a record: its table and fields as one string, prose as words
    and short field values as `field__value` tokens (kept whole by the default tokenizer)."""
    parts = [f"table__{_token(table)}"] if table else []
    for key in sorted(raw):
        value = raw[key]
        if value in (None, "") or _skipped(key):
            continue
        text = str(value)
        if key in PROSE_FIELDS or len(text) > CATEGORICAL_MAX_CHARS:
            parts.append(text)
        elif token := _token(text):
            parts.append(f"{key}__{token}")
    return " ".join(parts)
