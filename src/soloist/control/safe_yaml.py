"""YAML for definition files, composed within limits so that no file can exhaust a deploy.

PyYAML's safe loader builds what a file says, however much that is: aliases share nodes,
so a few hundred bytes can stand for a document of billions of values (a "billion
laughs") or for one that contains itself (``a: &a [*a]``), which never finishes; deep
nesting overflows the composer's recursion. :class:`LimitedLoader` composes the nodes
itself (libyaml, where PyYAML has it, only parses) and refuses each of these at the node
or alias that breaks a limit, as :class:`Refused` with its place, before anything is built.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.error import Mark
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

# What one definition file may hold: beyond these a file is a mistake or an attack, and
# refusing it keeps a deploy from hanging or storing a huge row.
MAX_FILE_BYTES = 2**20
MAX_DEPTH = 64  # nesting of mappings and lists
MAX_VALUES = 200_000  # keys, values and items, with aliases expanded
MAX_CHARACTERS = 4 * 2**20  # text of all scalars, with aliases expanded
_FLOAT_TAG = "tag:yaml.org,2002:float"


def too_big(size: int) -> str:
    return (f"the file is {size / 1024:.0f} KiB; a definition file may hold at most "
            f"{MAX_FILE_BYTES // 1024} KiB")


def unreadable(text: str, exc: yaml.reader.ReaderError) -> tuple[int, int, str]:
    """Line, column and sentence for a character YAML does not allow (NUL, say)."""
    if yaml.__with_libyaml__:  # libyaml counts bytes of the UTF-8 text, PyYAML characters
        before = text.encode("utf-8")[: exc.position].decode("utf-8", "replace")
    else:  # pragma: no cover
        before = text[: exc.position]
    line, column = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    return line, column, (f"the file holds the character U+{code:04X}, which YAML does not "
                          "allow; remove it")


class _Place(Protocol):
    """Where a YAML event starts (PyYAML's and libyaml's marks alike)."""

    line: int
    column: int


class Refused(Exception):
    """A file that would exhaust the deploy (nesting, aliases, size), where it goes wrong.

    Not a Soloist error: a signal inside the loader, which reports it as one of the file's
    problems (``file:line:column``) in a :class:`~soloist.errors.DefinitionError`.
    """

    def __init__(self, mark: _Place, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


if yaml.__with_libyaml__:
    from yaml._yaml import CParser as _Events
else:  # pragma: no cover - PyYAML built without libyaml
    class _Events(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):  # type: ignore[no-redef]
        def __init__(self, text: str) -> None:
            yaml.reader.Reader.__init__(self, text)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)


class LimitedLoader(Composer, _Events, SafeConstructor, Resolver):
    """The safe loader, refusing while it composes what no deploy should try to construct.

    Each composed node knows the number of values, the text and the depth it expands to;
    an alias adds its target's, so every limit is checked where it is broken.
    """

    def __init__(self, text: str) -> None:
        # libyaml parses (three times faster); composing stays here, where it is checked.
        _Events.__init__(self, text)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._depth = 0
        self._open: set[str] = set()  # anchors whose nodes are still being composed
        self._sizes: dict[int, tuple[int, int, int]] = {}  # node -> values, characters, depth
        self._values = 0
        self._characters = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        assert event is not None  # the composer asks only where an event must come
        mark: _Place = event.start_mark or Mark("", 0, 0, 0, "", 0)
        if isinstance(event, AliasEvent):
            if event.anchor in self._open:
                raise Refused(mark, f"the alias *{event.anchor} is inside the value it names "
                               f"(&{event.anchor}); a value cannot contain itself")
            node = super().compose_node(parent, index)
            assert node is not None
            values, characters, depth = self._sizes[id(node)]
            self._count(mark, values, characters, self._depth + depth)
            return node
        anchor: str | None = getattr(event, "anchor", None)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise Refused(mark, f"values are nested more than {MAX_DEPTH} levels deep")
        if anchor is not None:
            self._open.add(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open.discard(anchor)
        assert node is not None
        self._sizes[id(node)] = self._size(node)
        if isinstance(node, ScalarNode):
            self._count(mark, 1, len(node.value), 0)
            if node.tag == _FLOAT_TAG and not math.isfinite(self.construct_yaml_float(node)):
                raise Refused(mark, f"{node.value!r} is not a finite number; write a number "
                               "or quote it to make it text")
        else:
            self._count(mark, 1, 0, 0)
        return node

    def _size(self, node: Node) -> tuple[int, int, int]:
        if isinstance(node, ScalarNode):
            return 1, len(node.value), 1
        children: list[Node] = []
        if isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, SequenceNode):
            children = list(node.value)
        sizes = [self._sizes[id(child)] for child in children]
        return (1 + sum(s[0] for s in sizes), sum(s[1] for s in sizes),
                1 + max((s[2] for s in sizes), default=0))

    def _count(self, mark: _Place, values: int, characters: int, depth: int) -> None:
        self._values += values
        self._characters += characters
        if depth > MAX_DEPTH:
            raise Refused(mark, f"values are nested more than {MAX_DEPTH} levels deep "
                           "(through this alias)")
        if self._values > MAX_VALUES:
            raise Refused(mark, f"the file expands to more than {MAX_VALUES} values "
                           "(through YAML aliases?); write it out or make it smaller")
        if self._characters > MAX_CHARACTERS:
            raise Refused(mark, f"the file expands to more than "
                           f"{MAX_CHARACTERS // 2**20} MiB of text (through YAML aliases?)")
