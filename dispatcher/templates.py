"""Message templates: `{{name}}` filled from a row's variables, `{{name|fallback}}` when it has none.

Plain text substitution with one regular expression: nothing in a template is ever evaluated, so a
template can carry no code. Spaces inside the braces are allowed (`{{ name }}`), as seed 000's
author meant them to be.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(?:\|\s*([^{}]*?))?\s*\}\}")


class MissingVariable(KeyError):
    """A placeholder without a fallback names a variable the row does not have."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def render(template: str, variables: Mapping[str, object]) -> str:
    """Fill every placeholder of `template`; raise MissingVariable for the first one that cannot be."""

    def fill(match: re.Match) -> str:
        name, fallback = match.group(1), match.group(2)
        value = variables.get(name)
        if value is None or value == "":
            if fallback is None:
                raise MissingVariable(name)
            return fallback
        return str(value)

    return _PLACEHOLDER.sub(fill, template)
