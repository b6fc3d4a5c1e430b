"""The report's document: a few kinds of block (`fragsim.analysis.report` fills them), and its
two renderings, one self-contained HTML page and a Markdown twin."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Block", "Code", "Facts", "Figure", "Heading", "Table", "Text", "render_html",
           "render_markdown"]

# --- the document: a few kinds of block, rendered twice ---------------------------------------

@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    text: str
    note: bool = False  # something that could not be done


@dataclass
class Facts:
    items: list[tuple[str, str]]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    collapsed: str = ""  # HTML: inside <details> with this summary line


@dataclass
class Code:
    text: str
    lang: str = ""
    collapsed: str = ""


@dataclass
class Figure:
    name: str
    caption: str
    png: Path | None = None
    error: str = ""


Block = Heading | Text | Facts | Table | Code | Figure


# --- rendering --------------------------------------------------------------------------------

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       color: #222; max-width: 1150px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .4em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: .4em 0 1em; font-size: .88em; }
th, td { border: 1px solid #d0d0d0; padding: .2em .55em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.facts th, table.facts td { border: none; background: none; padding-left: 0; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: .6em; overflow: auto;
      font-size: .82em; max-height: 40em; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; }
.note { color: #9a3b00; }
details summary { cursor: pointer; color: #555; }
"""
_NUM = re.compile(r"^[-+]?(\d[\d,]*(\.\d+)?([eE][-+]?\d+)?|\[[-\d., ]+\]|-)$")


def render_html(title: str, blocks: list[Block]) -> str:
    """One self-contained HTML page: inline CSS, figures as base64 PNG."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{e(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>"]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{e(b.text)}</h{b.level}>")
        elif isinstance(b, Text):
            out.append(f'<p class="note">{e(b.text)}</p>' if b.note else f"<p>{e(b.text)}</p>")
        elif isinstance(b, Facts):
            out.append('<table class="facts">' + "".join(
                f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in b.items) + "</table>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{e(h)}</th>" for h in b.header)
            body = "".join("<tr>" + "".join(
                f'<td class="num">{e(c)}</td>' if _NUM.match(c) else f"<td>{e(c)}</td>"
                for c in row) + "</tr>\n" for row in b.rows)
            table = f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>"
            out.append(_details(b.collapsed, table))
        elif isinstance(b, Code):
            out.append(_details(b.collapsed, f"<pre>{e(b.text)}</pre>"))
        elif isinstance(b, Figure):
            out.append(_html_figure(b))
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _details(summary: str, inner: str) -> str:
    return inner if not summary else (f"<details><summary>{html.escape(summary)}</summary>\n"
                                      f"{inner}\n</details>")


def _html_figure(f: Figure) -> str:
    e = html.escape
    if f.png is None:
        return (f'<p class="note">Figure {e(f.name)} could not be drawn: {e(f.error)}. '
                f"({e(f.caption)})</p>")
    data = base64.b64encode(f.png.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{e(f.name)}">'
            f"<figcaption>{e(f.caption)}</figcaption></figure>")


def render_markdown(blocks: list[Block], base: Path) -> str:
    """The same blocks as Markdown, figures as PNG paths relative to `base`."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + _md(b.text))
        elif isinstance(b, Text):
            out.append(f"*{_md(b.text)}*" if b.note else _md(b.text))
        elif isinstance(b, Facts):
            out.append("\n".join(f"- **{_md(k)}**: {_md(v)}" for k, v in b.items))
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(_md_cell(h) for h in b.header) + " |",
                     "|" + "---|" * len(b.header)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines))
        elif isinstance(b, Code):
            fence = "~~~~" if "```" in b.text else "```"
            out.append(f"{fence}{b.lang}\n{b.text.rstrip()}\n{fence}")
        elif isinstance(b, Figure):
            if b.png is None:
                out.append(f"*{_md(f'Figure {b.name} could not be drawn: {b.error}. ')}"
                           f"({_md(b.caption)})*")
            else:
                rel = b.png.relative_to(base) if b.png.is_relative_to(base) else b.png
                out.append(f"![{_md(b.name)}]({rel.as_posix()})\n\n*{_md(b.caption)}*")
    return "\n\n".join(out) + "\n"


def _md(text: str) -> str:
    """Markdown text that shows as written: backslash, `<`, `*` and `|` escaped."""
    for c in "\\<*|":
        text = text.replace(c, "\\" + c)
    return text


def _md_cell(text: str) -> str:
    return _md(text).replace("\n", " ")
