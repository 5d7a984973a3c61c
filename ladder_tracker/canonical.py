"""The one canonical form of a JSON value and its sha256: what every stored hash is over.

Canonical JSON here is the value dumped with sorted keys, no whitespace (`,` and `:`
separators), non-ASCII characters as themselves (not `\\u` escapes), encoded as UTF-8.
Key order and spacing are not part of the value, so a dict read back from any database
(PostgreSQL's jsonb reorders keys) hashes the same as the one written.

Used by packet snapshots (`PacketSnapshot.sha256`), each imported evidence item's ServiceNow
snapshot (`Evidence.snapshot_sha256`), the per-item hashes a packet snapshot carries, the
backfill migration and `manage.py verify_snapshots`. Changing it would make every stored
hash a mismatch: don't.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson


def canonical_json(value: Any) -> bytes:
    """`value` in canonical form: sorted-key compact JSON, UTF-8.

    orjson writes the same bytes as the json.dumps call below for what snapshots hold
    (strings, ints, booleans, None, lists and string-keyed dicts; keys sort by code point
    either way, and both escape only quotes, backslashes and control characters, the same
    way), at a fraction of the cost. Anything else goes the json way: floats (each library
    spells some exponents its own way), non-string keys, strings that are not valid Unicode
    (lone surrogates, which orjson refuses). tests/test_canonical.py holds the two to one
    another."""
    if _plain(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # a lone surrogate, an integer beyond 64 bits
            pass
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8")


def _plain(value: Any) -> bool:
    """Only str/int/bool/None and lists and string-keyed dicts of them (no float, no tuple,
    no subclass whose JSON form either library might choose differently)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if kind is list:
        return all(_plain(v) for v in value)
    return False


def canonical_sha256(value: Any) -> str:
    """The hex sha256 of `value`'s canonical form."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def snapshot_sha256(snapshot: dict | None) -> str | None:
    """An evidence item's snapshot hash: None when it has no snapshot (manual evidence)."""
    return canonical_sha256(snapshot) if snapshot else None


def json_text(value: Any) -> str:
    """A value as JSON text for a JSON column (not canonical: key order as given). orjson is
    several times json.dumps for the sync's dicts of strings, and both backends take JSON as
    text (SQLite stores it; PostgreSQL parses it into jsonb). Non-string keys become
    strings, as json.dumps makes them."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
