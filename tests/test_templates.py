"""Templates parse in one pass, whatever the text holds, and mean what the old pattern meant.

The old regular expression is kept here as the oracle of what a template means: on every text small
enough for it, the one-pass parser renders the same. On hostile texts, the parser's work is counted
(the characters it reads), not timed.
"""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.templates import MissingVariable, Template
from tests.conftest import auth

_OLD = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(?:\|\s*([^{}]*?))?\s*\}\}")


def old_render(template: str, variables: dict) -> str:
    def fill(match: re.Match) -> str:
        value = variables.get(match.group(1))
        if value is None or value == "":
            if match.group(2) is None:
                raise MissingVariable(match.group(1))
            return match.group(2)
        return str(value)

    return _OLD.sub(fill, template)


TEXTS = st.text(alphabet=st.sampled_from(list("{}| \n\u00a0ab_.-1é")), max_size=40)
VARIABLES = st.dictionaries(st.sampled_from(["a", "b", "a_1", "b.a", "é"]), st.sampled_from(["", "x", "Ana"]))


@settings(max_examples=3000, deadline=None)
@given(TEXTS, VARIABLES)
def test_the_parser_means_what_the_old_pattern_meant(text, variables):
    try:
        expected = old_render(text, variables)
    except MissingVariable as missing:
        with pytest.raises(MissingVariable) as raised:
            Template(text).render(variables)
        assert raised.value.name == missing.name
    else:
        assert Template(text).render(variables) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Olá {{name}}!", "Olá Ana!"),
        ("Olá {{ name }} de {{ city | sua cidade }}", "Olá Ana de sua cidade"),
        ("{{{name}}}", "{Ana}"),
        ("{{name}}{{name}}", "AnaAna"),
        ("{{ na me }} {{}} {{name", "{{ na me }} {{}} {{name"),
        ("{{x|a|b}}", "a|b"),
    ],
)
def test_examples(text, expected):
    assert Template(text).render({"name": "Ana"}) == expected


class CountingText(str):
    """A text that counts the characters read from it, one by one or by slices."""

    reads = 0

    def __getitem__(self, key):
        piece = str.__getitem__(self, key)
        CountingText.reads += len(piece)
        return piece


@pytest.mark.parametrize(
    "hostile",
    [
        "{{a|" + " " * 4000,  # the review's: cubic with the old pattern
        "{{" * 2000,
        "{{a" + "|" * 4000,
        ("{{a }" * 1000),
        "{" * 4000 + "}" * 4000,
    ],
)
def test_a_hostile_template_costs_work_in_proportion_to_its_length(hostile):
    CountingText.reads = 0
    Template(CountingText(hostile))
    assert CountingText.reads <= 4 * len(hostile), CountingText.reads


def test_a_4_kb_hostile_template_on_a_bulk_is_answered_and_seed_000s_templates_are_capped(client):
    hostile = "{{a|" + " " * 4000
    rows = [{"recipient_phone": f"+55649{n:08d}", "external_id": f"h-{n}"} for n in range(200)]
    answer = client.post("/v1/messages/bulk", json={"template": hostile, "messages": rows}, headers=auth())
    assert answer.status_code == 200 and answer.json["accepted"] == 200
    too_long = {"instanceName": "i", "type": "text", "message": "x" * 4097, "recipients": [{"phone": "+5564999998888"}]}
    refused = client.post("/api/v1/dispatch/bulk", json=too_long, headers=auth())
    assert refused.status_code == 400
    assert "message must be at most 4096 characters" in refused.json["message"]
