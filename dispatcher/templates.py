"""Message templates: `{{name}}` filled from a row's variables, `{{name|fallback}}` when it has none.

Plain text substitution: nothing in a template is ever evaluated, so a template can carry no code.
Spaces inside the braces are allowed (`{{ name }}`), as the legacy system's author meant them to be.

A template is parsed once per request (`Template(text)`) by a single pass over its characters, then
rendered for each row by joining its parts: the work is linear in the template and in each row's
output, whatever the text holds. (The regular expression this replaces backtracked on unclosed
placeholders: `{{a|` followed by 2,000 spaces took seconds a row, and stalled every other request of
its web process.)

The grammar: `{{`, optional spaces, a name (`[A-Za-z_][A-Za-z0-9_.-]*`), optional spaces, then either
`}}` or `|` and a fallback running to the first `}}` (no `{` or `}` inside; its outer spaces trimmed).
Anything else, an unclosed `{{` included, is literal text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


class MissingVariable(KeyError):
    """A placeholder without a fallback names a variable the row does not have."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class Template:
    """A template's parts: literal strings and (name, fallback or None) placeholders, in order."""

    def __init__(self, text: str):
        self.parts: list[str | tuple[str, str | None]] = []
        literal_from = 0
        opened = -1  # where the `{{` of the placeholder being read starts (-1: none)
        index, length = 0, len(text)
        while index < length:
            char = text[index]
            if char == "{":
                # A `{` inside a placeholder ends it as literal text; with the one before it, it opens a new one.
                opened = index - 1 if index > 0 and text[index - 1] == "{" else -1
            elif char == "}" and opened >= 0:
                placeholder = _placeholder(text[opened + 2 : index]) if text[index + 1 : index + 2] == "}" else None
                if placeholder is not None:
                    if opened > literal_from:
                        self.parts.append(text[literal_from:opened])
                    self.parts.append(placeholder)
                    literal_from = index + 2
                    index += 1  # the closing `}}`'s second brace
                opened = -1
            index += 1
        if literal_from < length:
            self.parts.append(text[literal_from:])

    def render(self, variables: Mapping[str, object]) -> str:
        """Fill every placeholder; raise MissingVariable for the first one that cannot be."""
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            name, fallback = part
            value = variables.get(name)
            if value is None or value == "":
                if fallback is None:
                    raise MissingVariable(name)
                out.append(fallback)
            else:
                out.append(str(value))
        return "".join(out)


def _placeholder(inner: str) -> tuple[str, str | None] | None:
    """What is between `{{` and `}}` as (name, fallback or None), or None when it is not a placeholder."""
    name, pipe, fallback = inner.partition("|")
    name = name.strip()
    if not _NAME.fullmatch(name):
        return None
    return name, fallback.strip() if pipe else None
