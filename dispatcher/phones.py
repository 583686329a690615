"""Phone numbers: the reach-town contract's rule (10 to 15 digits once symbols are removed), then real
validation with `phonenumbers`, giving the E.164 form we store and send to.

A number written without a country code is read in the default region (Brazil unless
`DEFAULT_REGION` says otherwise), as the legacy system did by prefixing 55.
"""

from __future__ import annotations

import functools
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
    patterns = _region_patterns(int(code))
    if patterns is None:
        return phonenumbers.is_valid_number(
            phonenumbers.PhoneNumber(country_code=int(code), national_number=int(national))
        )
    general, kinds = patterns
    return _fits(national, general) and any(_fits(national, kind) for kind in kinds)


# A number's kinds in the order numbers mostly are (a WhatsApp campaign goes to mobiles), where phonenumbers
# tries the rare ones first. The order cannot change the answer: a number is valid when any kind fits.
_KINDS = (
    "fixed_line",
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)
_Pattern = tuple[frozenset[int], re.Pattern[str] | None]  # a kind's possible lengths (none: any) and its pattern


def _fits(national: str, pattern: _Pattern) -> bool:
    lengths, regex = pattern
    return regex is not None and (not lengths or len(national) in lengths) and regex.fullmatch(national) is not None


@functools.cache
def _region_patterns(code: int) -> tuple[_Pattern, tuple[_Pattern, ...]] | None:
    """The patterns of the one region that calling code `code` has, compiled once: what
    `phonenumbers.is_valid_number` matches a number against, at a quarter of its cost on a 10,000-row bulk
    (it looks up and tries eleven patterns a number, a mobile last). None for a code that several regions
    share (+1, +7, +44) or no region has (+800): those take `is_valid_number` itself, which first finds the
    region. `tests/test_phones.py` holds both to the same answers, region by region."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ())
    if len(regions) != 1 or regions[0] == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(regions[0])
    if metadata is None:
        return None

    def compiled(desc) -> _Pattern:
        if desc is None or not desc.national_number_pattern:
            return frozenset(), None
        return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)

    # A mobile is tried apart from the fixed lines only where its pattern differs, as phonenumbers does.
    kinds = [] if metadata.same_mobile_and_fixed_line_pattern else [compiled(metadata.mobile)]
    kinds += [compiled(getattr(metadata, kind)) for kind in _KINDS]
    return compiled(metadata.general_desc), tuple(kinds)


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
