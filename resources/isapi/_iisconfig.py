"""IIS 7+ configuration (applicationHost.config) as text that can be edited in place.

The installer never rewrites the whole file: it inserts or deletes whole elements at
exact character offsets, indented as IIS indents, so that removing what was installed
gives back the file byte for byte. ``Item`` is one element the installer owns (an
application pool, an application, a handler mapping, ...) with the chain of containers
it lives in; ``Config.ensure`` and ``Config.discard`` add and take back one item.
"""

import re
import xml.etree.ElementTree as ElementTree

# ElementTree imports its parser only when it first parses (inside XMLParser): named here,
# the freezer ships pyexpat with the installer, which parses applicationHost.config.
import xml.parsers.expat  # noqa: F401


class ConfigError(Exception):
    """The configuration cannot be read or cannot take the change."""


_TOKEN = re.compile(
    r"<!--.*?-->"
    r"|<\?.*?\?>"
    r"|<!\[CDATA\[.*?\]\]>"
    r"|<!DOCTYPE[^>]*>"
    r"|</(?P<close>[^\s>]+)\s*>"
    r"|<(?P<open>[^\s/>!?]+)(?P<attrs>(?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*(?P<empty>/?)>",
    re.S,
)
_ATTR = re.compile(r"([^\s=/>]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_ENTITY = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _unescape(value):
    def one(match):
        name = match.group(1)
        if name.startswith("#x"):
            return chr(int(name[2:], 16))
        if name.startswith("#"):
            return chr(int(name[1:]))
        return _NAMED[name]

    return _ENTITY.sub(one, value)


def escape(value):
    """An attribute value as IIS writes it, between double quotes."""
    return (
        str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


class Node:
    """One element and where its text is: ``start``..``end`` is the whole element,
    ``open_end`` the end of its start tag, ``close_start`` the start of its end tag."""

    def __init__(self, tag, attrs, start, open_end, parent):
        self.tag = tag
        self.attrs = attrs
        self.start = start
        self.open_end = open_end
        self.close_start = None
        self.end = None
        self.parent = parent
        self.children = []

    @property
    def self_closing(self):
        return self.close_start is None

    def find(self, tag, key):
        for child in self.children:
            if child.tag == tag and all(child.attrs.get(k) == v for k, v in key.items()):
                return child
        return None


def parse(text):
    """The element tree of ``text`` with offsets. ``text`` must be well-formed."""
    root = None
    stack = []
    for match in _TOKEN.finditer(text):
        if match.group("open"):
            attrs = {}
            for a in _ATTR.finditer(match.group("attrs")):
                value = a.group(2) if a.group(2) is not None else a.group(3)
                attrs[a.group(1)] = _unescape(value)
            parent = stack[-1] if stack else None
            node = Node(match.group("open"), attrs, match.start(), match.end(), parent)
            if parent is not None:
                parent.children.append(node)
            elif root is None:
                root = node
            if match.group("empty"):
                node.end = match.end()
            else:
                stack.append(node)
        elif match.group("close"):
            node = stack.pop()
            node.close_start = match.start()
            node.end = match.end()
    return root


class Element:
    """An element to write: a tag, attributes in the order IIS writes them, children."""

    def __init__(self, tag, attrs=(), children=()):
        self.tag = tag
        self.attrs = dict(attrs)
        self.children = list(children)

    def render(self, indent, unit, newline):
        attrs = "".join(f' {k}="{escape(v)}"' for k, v in self.attrs.items())
        if not self.children:
            return f"<{self.tag}{attrs} />"
        inner = "".join(newline + indent + unit + c.render(indent + unit, unit, newline) for c in self.children)
        return f"<{self.tag}{attrs}>{inner}{newline}{indent}</{self.tag}>"

    def matches(self, node):
        """Whether ``node`` says exactly what this element says."""
        if node.tag != self.tag or node.attrs != {k: str(v) for k, v in self.attrs.items()}:
            return False
        if len(node.children) != len(self.children):
            return False
        return all(c.matches(n) for c, n in zip(self.children, node.children))


class Step:
    """One container on the way to an item: its tag, the attributes that identify it,
    and the attributes it gets when the installer creates it."""

    def __init__(self, tag, key=None, create=None, must_exist=None):
        self.tag = tag
        self.key = dict(key or {})
        self.create = dict(create if create is not None else self.key)
        # If set, a missing container is an error with this text, not something to create.
        self.must_exist = must_exist


class Item:
    """One element the installer owns, and the containers it lives in.

    ``location`` is None for server-level settings, else the path of a ``<location>``
    element (``Default Web Site/hello``). ``section`` is the section's path below
    ``configuration`` (or the location), e.g. ``system.webServer/handlers``; ``steps`` are
    further containers inside the section. ``key`` names the attributes that identify
    the element among its siblings.
    """

    def __init__(self, what, location, section, element, key, section_attrs=None, steps=(), appcmd=None):
        self.what = what
        self.location = location
        self.section = section
        self.element = element
        self.key = {k: str(element.attrs[k]) for k in key}
        self.section_attrs = dict(section_attrs or {})
        self.steps = list(steps)
        self.appcmd = appcmd

    def chain(self):
        chain = []
        if self.location is not None:
            chain.append(Step("location", {"path": self.location}))
        parts = self.section.split("/")
        for i, part in enumerate(parts):
            attrs = self.section_attrs if i == len(parts) - 1 else {}
            chain.append(Step(part, {}, attrs))
        chain.extend(self.steps)
        return chain


class Config:
    """The text of one applicationHost.config and the edits made to it."""

    def __init__(self, data, path):
        self.path = path
        # The bytes as read, to see at write time whether someone else changed the file.
        self.original = data
        self.bom = data.startswith(b"\xef\xbb\xbf")
        try:
            self.text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path} is not UTF-8 (byte {e.start}); nothing was changed") from None
        try:
            tree = ElementTree.fromstring(data)
        except ElementTree.ParseError as e:
            line, column = e.position
            raise ConfigError(
                f"{path} is not well-formed XML (line {line}, column {column + 1}: {_reason(e)}); "
                "IIS cannot read it either. Nothing was changed: repair it or restore a backup "
                "(%windir%\\System32\\inetsrv\\config\\history)"
            ) from None
        if tree.tag != "configuration" or tree.find("system.applicationHost") is None:
            raise ConfigError(
                f"{path} is not an IIS applicationHost.config (no <configuration> with "
                "<system.applicationHost>); nothing was changed"
            )
        self.newline = "\r\n" if "\r\n" in self.text else "\n"
        self.unit = self._indent_unit()
        self.root = parse(self.text)

    def data(self):
        return (b"\xef\xbb\xbf" if self.bom else b"") + self.text.encode("utf-8")

    def _indent_unit(self):
        match = re.search(r"<configuration[^>]*>\r?\n([ \t]+)<", self.text)
        return match.group(1) if match else "    "

    def _indent_of(self, node):
        line_start = self.text.rfind("\n", 0, node.start) + 1
        prefix = self.text[line_start : node.start]
        return prefix if prefix.strip() == "" else ""

    def _edit(self, start, end, new):
        self.text = self.text[:start] + new + self.text[end:]
        self.root = parse(self.text)

    # Queries ----------------------------------------------------------------------------

    def node(self, *path):
        """The node at ``path``: (tag, key) pairs below ``configuration``, or None."""
        node = self.root
        for tag, key in path:
            node = node.find(tag, key)
            if node is None:
                return None
        return node

    def _walk(self, item):
        """The containers of ``item`` that exist, outermost first, and the rest."""
        node = self.root
        found = [node]
        chain = item.chain()
        for i, step in enumerate(chain):
            child = node.find(step.tag, step.key)
            if child is None:
                return found, chain[i:]
            found.append(child)
            node = child
        return found, []

    def lookup(self, item):
        found, missing = self._walk(item)
        if missing:
            return None
        return found[-1].find(item.element.tag, item.key)

    # Edits ------------------------------------------------------------------------------

    def ensure(self, item):
        """Makes ``item`` present exactly as given. Returns what changed: "added",
        "updated" or None."""
        found, missing = self._walk(item)
        for step in missing:
            if step.must_exist:
                raise ConfigError(step.must_exist)
        parent = found[-1]
        if missing:
            element = item.element
            for step in reversed(missing):
                element = Element(step.tag, step.create, [element])
            self._insert(parent, element)
            return "added"
        existing = parent.find(item.element.tag, item.key)
        if existing is None:
            self._insert(parent, item.element)
            return "added"
        if item.element.matches(existing):
            return None
        indent = self._indent_of(existing)
        self._edit(existing.start, existing.end, item.element.render(indent, self.unit, self.newline))
        return "updated"

    def replace(self, old, new):
        """Puts ``new`` where ``old`` is, in its place among its siblings, so that
        switching back gives the text back byte for byte. Returns whether ``old`` was
        there to replace."""
        found, missing = self._walk(old)
        node = None if missing else found[-1].find(old.element.tag, old.key)
        if node is None:
            return False
        indent = self._indent_of(node)
        self._edit(node.start, node.end, new.element.render(indent, self.unit, self.newline))
        return True

    def discard(self, item):
        """Takes ``item`` out, and the containers that it leaves empty inside a
        ``<location>``; a server-level container left empty is written self-closing, as
        IIS writes empty elements. Returns whether anything changed."""
        found, missing = self._walk(item)
        if missing:
            return False
        node = found[-1].find(item.element.tag, item.key)
        if node is None:
            return False
        in_location = item.location is not None
        while True:
            parent = node.parent
            self._delete(node)
            parent = self._same_node(parent)
            if parent is self.root or parent.children or self.text[parent.open_end : parent.close_start].strip():
                break
            if in_location:
                node = parent
                continue
            self._collapse(parent)
            break
        return True

    def _same_node(self, old):
        """``old`` found again in the re-parsed tree (it starts at the same offset, since
        edits only happen after it)."""
        def search(node):
            if node.start == old.start and node.tag == old.tag:
                return node
            for child in node.children:
                if child.start <= old.start < child.end:
                    return search(child)
            return None

        return search(self.root)

    def _insert(self, parent, element):
        indent = self._indent_of(parent)
        child_indent = indent + self.unit
        text = element.render(child_indent, self.unit, self.newline)
        if parent.self_closing:
            open_tag = self.text[parent.start : parent.end]
            open_tag = re.sub(r"\s*/>$", ">", open_tag)
            new = f"{open_tag}{self.newline}{child_indent}{text}{self.newline}{indent}</{parent.tag}>"
            self._edit(parent.start, parent.end, new)
        elif parent.children:
            # After the last sibling of the same kind (where appcmd puts it), else last.
            same = [c for c in parent.children if c.tag == element.tag]
            at = (same or parent.children)[-1].end
            self._edit(at, at, self.newline + child_indent + text)
        else:
            at = parent.open_end
            tail = "" if self.text[at : parent.close_start].strip(" \t") else self.newline + indent
            self._edit(at, at, self.newline + child_indent + text + tail)

    def _delete(self, node):
        start = node.start
        while start > 0 and self.text[start - 1] in " \t":
            start -= 1
        if start > 0 and self.text[start - 1] == "\n":
            start -= 1
            if start > 0 and self.text[start - 1] == "\r":
                start -= 1
        self._edit(start, node.end, "")

    def _collapse(self, node):
        open_tag = self.text[node.start : node.open_end]
        self._edit(node.start, node.end, re.sub(r"\s*>$", " />", open_tag))


def _reason(error):
    text = str(error)
    return text.split(":", 1)[0] if ":" in text else text
