"""Phone numbers: the reach-town contract's rule (10 to 15 digits once symbols are removed), then real
validation with `phonenumbers`, giving the E.164 form we store and send to.

A number written without a country code is read in the default region (Brazil unless
`DEFAULT_REGION` says otherwise), as the legacy system did by prefixing 55.
"""

from __future__ import annotations

import re

import phonenumbers

from providers.base import calling_code

_ALLOWED = re.compile(r"^[\d\s+().\-]+$")


class InvalidPhoneNumber(ValueError):
    """The text is not a phone number WhatsApp could reach."""


def _valid_e164(text: str) -> bool:
    """Fast path for text already in E.164 (`+` and digits), the usual form in a CRM export.

    Building the number directly from its calling code and the rest skips `phonenumbers.parse`, which
    costs most of a 10,000-row bulk's time.
    A False here only means "take the full path".
    """
    digits = text[1:]
    code = calling_code(digits)
    national = digits[len(code) :]
    if not code or not national or national.startswith("0"):
        return False
    return phonenumbers.is_valid_number(phonenumbers.PhoneNumber(country_code=int(code), national_number=int(national)))


def to_e164(raw: str, default_region: str) -> str:
    """Return `raw` as E.164 (`+5564999998888`), or raise InvalidPhoneNumber."""
    text = raw.strip()
    if (
        text.startswith("+")
        and text.isascii()
        and text[1:].isdigit()
        and 10 <= len(text) - 1 <= 15
        and _valid_e164(text)
    ):
        return text
    if not _ALLOWED.match(text) or text.count("+") > 1 or ("+" in text and not text.startswith("+")):
        raise InvalidPhoneNumber(raw)
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        candidates = ["+" + digits]
    elif digits.startswith("00"):
        digits = digits[2:]
        candidates = ["+" + digits]
    else:
        # "5564999998888" and "64999998888" are both Brazilian in region BR; "14155552671" is not,
        # so it is then tried as a full international number.
        candidates = [digits, "+" + digits]
    if not 10 <= len(digits) <= 15:
        raise InvalidPhoneNumber(raw)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, default_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise InvalidPhoneNumber(raw)
