"""Markdown to safe HTML, in time linear in the input, for every Markdown field we store.

cmark-gfm (GitHub's CommonMark, C, via cmarkgfm) parses and renders; raw HTML never passes
through it (it writes "raw HTML omitted" instead); nh3 (ammonia) then keeps only an
allow-list: no script, style, event handler, iframe or `javascript:`/`data:` URL survives,
and links get rel="noopener noreferrer nofollow". Rendered once on write and stored.

Why cmark-gfm and two guards (benchmarks/markdown.py, `make bench-markdown`, measured
2026-12-03 on the 2-core CI machine): Python-Markdown took ~21 s on 16 KB of crafted input
and raised RecursionError on deep lists. markdown-it-py is linear but pure Python: 10,000
characters of plain one-line paragraphs took ~130 ms and 10,000 `[` ~310 ms, over the 100 ms
budget at any useful limit. cmark-gfm renders the whole corpus at the limit in a few ms,
but two of its outputs are not linear for the rest of the pipeline:

- nesting: 20,000 `>` make 20,000 nested blockquotes, and html5ever (inside nh3) is
  quadratic in the depth of open elements (1.8 s there; capping cmark's HTML afterwards in
  Python cost as much). Each enclosing block takes at least one character of a line's
  prefix (a `>`, a list marker or indentation), so in a line whose run of container
  markers goes past MARKDOWN_MAX_PREFIX characters the marker that crosses it is escaped
  (it renders as the same character, as text): no block is nested deeper than that;
- GFM tables: every row gets as many cells as the delimiter row has columns, so a wide
  delimiter row and many short lines make rows × columns cells (5 MB of HTML, 0.4 s, from
  24 KB). A text whose widest delimiter row times its line count passes
  MARKDOWN_TABLE_CELL_BUDGET renders without the table extension (tables show as text).

Every field rendered here has a length limit (MARKDOWN_MAX_LENGTH), checked by the service
that writes it (markdown_check_length) and stated by the forms and serializers.
"""

from __future__ import annotations

import re

import cmarkgfm
import nh3
from cmarkgfm.cmark import Options
from django.core.exceptions import ValidationError

# Evidence descriptions and packet narratives (per competency): about 3,000 words, more than
# any real entry needs; the benchmark's worst case at this size is far under 100 ms.
MARKDOWN_MAX_LENGTH = 20_000
# What forms, serializers and services say when a field is longer.
MARKDOWN_TOO_LONG = f"At most {MARKDOWN_MAX_LENGTH:,} characters of Markdown."
# Characters of container prefix a line may have (`>`, list markers, indentation): ten
# levels of four-space lists or 40 nested quotes. Bounds the nesting depth (see above).
MARKDOWN_MAX_PREFIX = 40
# Cells a text's tables may produce at most: 10 columns × 500 lines fits; what goes past it
# renders without tables.
MARKDOWN_TABLE_CELL_BUDGET = 5_000

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "del",
    "sup",
    "sub",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}

_OPTIONS = Options.CMARK_OPT_VALIDATE_UTF8  # never CMARK_OPT_UNSAFE: raw HTML is omitted
_EXTENSIONS = ["table", "strikethrough", "autolink"]
_EXTENSIONS_NO_TABLE = ["strikethrough", "autolink"]
# One container marker of a line's prefix, after its indentation: a quote, a bullet or an
# ordered-list number followed by a blank (so "-----" or "+--+--+" ASCII art is not one).
_CONTAINER = r"[ \t]*(?:>|[-*+](?=[ \t]|$)|\d{1,9}[.)](?=[ \t]|$))"
# A line that starts with a run of such markers at least MARKDOWN_MAX_PREFIX characters
# long (the lookahead is one cheap scan; only those lines reach Python).
_DEEP_PREFIX = re.compile(rf"(?m)^(?=[ \t>*+.)0-9-]{{{MARKDOWN_MAX_PREFIX}}})(?:{_CONTAINER})+")
_ONE_CONTAINER = re.compile(_CONTAINER)


def markdown_check_length(
    text: str | None, *, field: str, limit: int = MARKDOWN_MAX_LENGTH
) -> None:
    """Refuse (ValidationError naming `field`) Markdown longer than `limit` characters."""
    if text and len(text) > limit:
        raise ValidationError({field: markdown_too_long(text, limit=limit)})


def markdown_too_long(text: str, *, limit: int = MARKDOWN_MAX_LENGTH) -> str:
    return f"At most {limit:,} characters of Markdown (this has {len(text):,})."


def _table_cells(text: str) -> int:
    """An upper bound of the cells GFM tables in `text` can make: the widest delimiter row's
    columns times the number of lines."""
    lines = text.splitlines()
    widest = 0
    for line in lines:
        # a delimiter row holds only pipes, dashes, colons and blanks
        if "-" in line and not line.strip(" \t|:-"):
            widest = max(widest, line.count("|") + 1)
    return widest * len(lines)


def _escape_deep_prefix(match: re.Match) -> str:
    """Backslash-escape the first marker that ends past MARKDOWN_MAX_PREFIX: it renders as
    the same character, and no container opens from there on in the line."""
    prefix = match.group(0)
    for token in _ONE_CONTAINER.finditer(prefix):
        if token.end() > MARKDOWN_MAX_PREFIX:
            at = token.end() - 1  # the marker's last character: `>`, the bullet, `.` or `)`
            return prefix[:at] + "\\" + prefix[at:]
    return prefix


def markdown_render(text: str) -> str:
    # lone surrogates (JSON allows them) cannot be encoded for cmark: replaced, not raised
    text = (text or "").encode("utf-8", "replace").decode("utf-8")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _DEEP_PREFIX.sub(_escape_deep_prefix, text)
    tables = _table_cells(text) <= MARKDOWN_TABLE_CELL_BUDGET
    html = cmarkgfm.markdown_to_html_with_extensions(
        text, options=_OPTIONS, extensions=_EXTENSIONS if tables else _EXTENSIONS_NO_TABLE
    )
    return nh3.clean(
        html.rstrip("\n"),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
