"""Reading HTML the way a disclosure check needs it: all of its text, and what is active in it.

``parse_html(text)`` returns an :class:`HtmlScan` with

- ``text``: every piece of character data, attribute value, script and style body, one per
  line, so identifiers hidden in a ``<script>`` JSON blob or a ``title=`` attribute are scanned
  like visible text;
- ``findings``: active or embedded content, each ``(kind, detail)``: ``script`` (a script
  element), ``event_handler`` (an ``on…=`` attribute), ``javascript_url``, ``embedded_object``
  (``iframe``, ``object``, ``embed``, ``applet``, ``frame``), ``form``, ``data_uri`` (data
  embedded in a ``data:`` URL), ``external_resource`` (a ``src``/``href`` that loads from
  elsewhere when the page is opened), ``meta_refresh``.

Only the standard library's tolerant ``html.parser`` is used: a check must not execute or fetch
anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

EMBEDDING_TAGS = {"iframe", "object", "embed", "applet", "frame", "frameset", "portal"}
RESOURCE_ATTRS = {"src", "href", "data", "poster", "background", "action", "srcset", "xlink:href"}
EXTERNAL = re.compile(r"^\s*(?:https?:|ftp:|//)", re.IGNORECASE)
JAVASCRIPT = re.compile(r"^\s*(?:javascript|vbscript):", re.IGNORECASE)
DATA_URI = re.compile(r"^\s*data:", re.IGNORECASE)
CSS_URL = re.compile(r"url\(\s*['\"]?\s*(?:https?:|//|data:)", re.IGNORECASE)


@dataclass
class HtmlScan:
    text: str
    findings: list[tuple[str, str]] = field(default_factory=list)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.findings: list[tuple[str, str]] = []
        self._raw: str | None = None  # "script" or "style" while inside one

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag = tag.lower()
        if tag == "script":
            src = dict(attrs).get("src")
            self.findings.append(("script", f"<script src={src!r}>" if src else "<script>"))
        if tag in ("script", "style"):
            self._raw = tag
        if tag in EMBEDDING_TAGS:
            self.findings.append(("embedded_object", f"<{tag}>"))
        if tag == "form":
            self.findings.append(("form", "<form>"))
        if tag == "meta" and (dict(attrs).get("http-equiv") or "").lower() == "refresh":
            self.findings.append(("meta_refresh", "<meta http-equiv=refresh>"))
        for name, value in attrs:
            self._attribute(tag, name.lower(), value or "")

    def _attribute(self, tag: str, name: str, value: str) -> None:
        if value:
            self.parts.append(value)
        if name.startswith("on"):
            self.findings.append(("event_handler", f"<{tag} {name}=…>"))
        if name in RESOURCE_ATTRS or name == "style":
            if JAVASCRIPT.match(value):
                self.findings.append(("javascript_url", f"<{tag} {name}=javascript:…>"))
            elif DATA_URI.match(value):
                media = value.split(",", 1)[0].strip()[:60]
                self.findings.append(("data_uri", f"<{tag} {name}={media},…> ({len(value)} chars)"))
            elif name != "style" and EXTERNAL.match(value):
                self.findings.append(("external_resource", f"<{tag} {name}={value[:80]}>"))
            elif name == "style" and CSS_URL.search(value):
                self.findings.append(("external_resource", f"<{tag} style=url(…)>"))

    def handle_endtag(self, tag: str) -> None:
        if tag.lower() == self._raw:
            self._raw = None

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.parts.append(data)
        if self._raw == "style" and CSS_URL.search(data):
            self.findings.append(("external_resource", "<style> url(…)"))


def parse_html(text: str) -> HtmlScan:
    collector = _Collector()
    collector.feed(text)
    collector.close()
    return HtmlScan("\n".join(collector.parts), collector.findings)
