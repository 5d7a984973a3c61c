"""Pathological Markdown, each case as long as the field limit allows.

Shared by tests/evidence/test_markdown_limits.py (renders, never raises, stays safe) and
benchmarks/markdown.py (how long each takes). Each case repeats a unit up to `length`
characters: the shapes that make Markdown renderers superlinear or recurse (nesting,
delimiter runs that never close, link and reference floods, wide tables).
"""

from __future__ import annotations


def _fill(unit: str, length: int, head: str = "", tail: str = "") -> str:
    room = max(0, length - len(head) - len(tail))
    body = (unit * (room // len(unit) + 1))[:room]
    return head + body + tail


def _nested_list(length: int, marker: str) -> str:
    # each level indented under the previous item's content
    out, depth, size = [], 0, 0
    while True:
        line = " " * (depth * (len(marker) + 1)) + marker + " x\n"
        if size + len(line) > length:
            break
        out.append(line)
        size += len(line)
        depth += 1
    return "".join(out)


def _nested_in_one_line(length: int) -> str:
    return _fill("- ", length, tail="x")


def _backtick_runs(length: int) -> str:
    out, n, size = [], 1, 0
    while size < length:
        piece = "`" * n + "a"
        out.append(piece)
        size += len(piece)
        n += 1
    return "".join(out)[:length]


def _references(length: int) -> str:
    defs, uses, i = [], [], 0
    while True:
        d, u = f"[r{i}]: https://example.com/{i} 'title {i}'\n", f"[r{i}] "
        if sum(map(len, defs)) + sum(map(len, uses)) + len(d) + len(u) + 1 > length:
            break
        defs.append(d)
        uses.append(u)
        i += 1
    return "".join(uses) + "\n\n" + "".join(defs)


def _wide_table(length: int) -> str:
    columns = length // 8
    head = "|" + "a|" * columns + "\n|" + "-|" * columns + "\n"
    return _fill("|\n", length, head=head)


def pathological_corpus(length: int) -> dict[str, str]:
    """Case id → Markdown of `length` characters (or just under)."""
    return {
        "blockquotes-deep": _fill(">", length),
        "blockquotes-spaced": _fill("> ", length, tail="x"),
        "list-deep-indented": _nested_list(length, "-"),
        "ordered-list-deep": _nested_list(length, "1."),
        "list-deep-one-line": _nested_in_one_line(length),
        "blockquote-list-mix": _fill("> - ", length, tail="x"),
        "emphasis-unclosed": _fill("*a", length),
        "emphasis-underscore": _fill("_a", length),
        "emphasis-nested": _fill("*", length // 2) + "a" + _fill("*", length - length // 2 - 1),
        "strong-emphasis-mix": _fill("**_a", length),
        "strikethrough-unclosed": _fill("~~a", length),
        "backtick-runs": _backtick_runs(length),
        "backtick-unclosed": _fill("`a``", length),
        "link-open-brackets": _fill("[", length),
        "link-open-parens": _fill("[a](", length),
        "link-nested-brackets": _fill("[(", length),
        "link-flood": _fill("[a](https://example.com/x) ", length),
        "image-flood": _fill("![a](https://example.com/x.png)", length),
        "reference-flood": _references(length),
        "reference-undefined": _fill("[x][y]", length),
        "autolink-flood": _fill("www.example.com ", length),
        "autolink-angle-unclosed": _fill("<http://", length),
        "html-unclosed": _fill("<a", length),
        "html-comment-unclosed": _fill("<!--", length),
        "entities": _fill("&#", length),
        "headings": _fill("#", length),
        "table-wide-many-rows": _wide_table(length),
        "table-many-rows": _fill("|x|\n", length, head="|a|b|\n|-|-|\n"),
        "mixed-delimiters": _fill("*_`[<~", length),
        "short-lines": _fill("a\n", length),
        "indented-code": _fill("    x\n", length),
        "fenced-unclosed": _fill("```\n", length),
        "hard-breaks": _fill("a  \n", length),
        "carriage-return-quotes": _fill(">\r", length),
        "lone-surrogates": _fill("\ud800*", length),
        "nul-bytes": _fill("\x00>", length),
    }
