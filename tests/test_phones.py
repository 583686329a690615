import random
import re

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.phones import InvalidPhoneNumber, to_e164
from providers.base import mask_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+5564999998888", "+5564999998888"),  # the reach-town contract's example
        ("5564999998888", "+5564999998888"),  # the contract's other accepted form
        ("+55 (64) 99999-8888", "+5564999998888"),
        ("64999998888", "+5564999998888"),  # no country code: read in Brazil, as the legacy system prefixed 55
        ("11 99999-9999", "+5511999999999"),
        ("+1 415 555 2671", "+14155552671"),
        ("14155552671", "+14155552671"),  # not Brazilian, so read as international
        ("0014155552671", "+14155552671"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_valid_numbers_become_e164(raw, expected):
    assert to_e164(raw, "BR") == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "123",
        "123456789",  # 9 digits: below the contract's 10
        "1234567890123456",  # 16 digits: above the contract's 15
        "+55 64 9999",
        "abc5564999998888",
        "55+64999998888",
        "++5564999998888",
        "+5564999998888; DROP",
        "1199999999",  # 10 digits but not a valid Brazilian number
        "+99912345678",  # no such country
    ],
)
def test_invalid_numbers_are_refused(raw):
    with pytest.raises(InvalidPhoneNumber):
        to_e164(raw, "BR")


def test_default_region_changes_reading_of_national_numbers():
    assert to_e164("2025550143", "US") == "+12025550143"


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+5564999998888", "+55********888"),
        ("+14155552671", "+1*******671"),
        ("+442079460958", "+44********58"),
        ("+351912345678", "+********5678"),  # no room for a 3-digit code and two digits: the last digits alone
        ("+12345678", "+1*****78"),
        ("5564999998888", "*********8888"),  # without its +, no country code is known
        ("12345", "***45"),
        ("1234", "****"),
        ("+55 64", "******"),  # not + and digits: hidden whole
        ("", ""),
    ],
)
def test_mask_phone_shows_the_country_code_and_the_last_digits_only(phone, masked):
    assert mask_phone(phone) == masked


@given(st.sampled_from(["1", "7", "44", "55", "351", "971"]), st.data())
def test_a_masked_number_shows_at_most_40_percent_of_its_digits(code, data):
    national = data.draw(st.text("0123456789", min_size=8 - len(code), max_size=15 - len(code)))
    phone = f"+{code}{national}"
    masked = mask_phone(phone)
    shown = re.fullmatch(rf"\+({code})?\*+(\d{{2,4}})", masked)
    assert shown, masked
    assert len(masked) == len(phone)
    assert phone.endswith(shown.group(2))
    assert sum(ch.isdigit() for ch in masked) <= 0.4 * (len(phone) - 1)


def test_other_scripts_digits_become_ascii_e164():
    assert to_e164("+٥٥٦٤٩٩٩٩٩٨٨٨٨", "BR") == "+5564999998888"


def _numbers_near_the_examples(region: str, draw: random.Random) -> list[str]:
    """E.164 texts around `region`'s example numbers of every kind: each example, and each with a digit changed,
    added or taken away, so that both sides of every pattern's edge are tried."""
    code = str(phonenumbers.country_code_for_region(region))
    numbers = []
    for kind in range(12):  # every PhoneNumberType but UNKNOWN
        example = phonenumbers.example_number_for_type(region, kind)
        if example is None:
            continue
        national = phonenumbers.national_significant_number(example)
        numbers.append(national)
        for _ in range(6):
            at = draw.randrange(len(national))
            numbers.append(national[:at] + draw.choice("0123456789") + national[at + 1 :])
            numbers.append(national[:at] + draw.choice("0123456789") + national[at:])
            numbers.append(national[:at] + national[at + 1 :])
    numbers += ["".join(draw.choice("0123456789") for _ in range(draw.randint(6, 13))) for _ in range(20)]
    return [f"+{code}{national}" for national in numbers]


def _phonenumbers_answer(text: str) -> str | None:
    """What phonenumbers itself says of `text`, with the contract's 10 to 15 digits."""
    if not 10 <= len(text) - 1 <= 15:
        return None
    number = phonenumbers.parse(text)
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@pytest.mark.parametrize("region", sorted(phonenumbers.SUPPORTED_REGIONS))
def test_an_e164_number_is_valid_exactly_when_phonenumbers_says_so(region):
    """The E.164 path tries a region's patterns in its own order, compiled once (dispatcher/phones.py): every
    region's numbers, valid and not, get phonenumbers' own answer."""
    for text in _numbers_near_the_examples(region, random.Random(region)):
        try:
            ours = to_e164(text, "BR")
        except InvalidPhoneNumber:
            ours = None
        assert ours == _phonenumbers_answer(text), text
