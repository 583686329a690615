import pytest

from dispatcher.phones import InvalidPhoneNumber, to_e164
from providers.base import mask_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+5564999998888", "+5564999998888"),  # the seed contract's example
        ("5564999998888", "+5564999998888"),  # the seed's other accepted form
        ("+55 (64) 99999-8888", "+5564999998888"),
        ("64999998888", "+5564999998888"),  # no country code: read in Brazil, as seed 000 prefixed 55
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
        "123456789",  # 9 digits: below the seed's 10
        "1234567890123456",  # 16 digits: above the seed's 15
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


def test_mask_phone_hides_the_middle():
    assert mask_phone("+5564999998888") == "+5564*****8888"
    assert "99999" not in mask_phone("+5564999998888")
    assert mask_phone("12345") == "*****"


def test_other_scripts_digits_become_ascii_e164():
    assert to_e164("+٥٥٦٤٩٩٩٩٩٨٨٨٨", "BR") == "+5564999998888"
