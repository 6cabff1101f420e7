"""Layer 1 of :mod:`awooop.security.redaction`: secrets and personal data known by their shape.

This runs on every inbound chat message, so each regex starts with a literal
(the engine then skips ahead to it instead of trying every position), puts its
left guard after that literal rather than before it for the same reason, and
uses possessive repeats so the cost stays linear. Passes whose literal cannot
occur are skipped by a substring test, and the digit scans, which have no
literal to skip to, by a byte mask of the text.
"""

from __future__ import annotations

import re

MARKER_FORMAT = "[REDACTED:{kind}]"
"""How every redaction reads; ``kind`` is one of :data:`KINDS`."""

MARKER_PATTERN = re.compile(r"\[REDACTED:[a-z_]+\]")
"""Finds markers, e.g. to tell redacted text from leftovers in a read model."""

KINDS = frozenset(
    {"card", "iban", "email", "phone", "national_id", "api_key", "jwt", "private_key", "bearer"}
    | {"secret"}
)


def marker(kind: str) -> str:
    """The marker that replaces a secret of `kind`."""
    return MARKER_FORMAT.format(kind=kind)


def luhn_valid(digits: str) -> bool:
    """Whether the ASCII digits `digits` pass the Luhn checksum of payment card numbers."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def mod97_valid(iban: str) -> bool:
    """Whether the upper-case IBAN `iban`, without spaces, passes ISO 7064 mod-97-10."""
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


# The letters in the order of the numbers they stand for, 10 to 35 (I and O at the end).
_ID_LETTERS = "ABCDEFGHJKLMNPQRSTUVXYWZIO"


def national_id_valid(number: str) -> bool:
    """Whether `number`, an upper-case letter and nine ASCII digits, passes the checksum of
    a Taiwanese national identification or resident certificate number.

    The letter stands for a number from 10 to 35 (A=10 … H=17, J=18 … N=22, P=23 …
    V=29, X=30, Y=31, W=32, Z=33, I=34, O=35). Its tens digit is weighted 1 and its
    units digit 9, the next eight digits 8, 7, … 1 and the last (check) digit 1; the
    sum is a multiple of 10. New-style resident certificate numbers (second character
    8 or 9) use the same rule. Anything else of another shape is not valid.
    """
    letter = _ID_LETTERS.find(number[:1])
    digits = number[1:]
    if letter < 0 or len(digits) != 9 or not (digits.isascii() and digits.isdigit()):
        return False
    tens, units = divmod(10 + letter, 10)
    total = tens + 9 * units + ord(digits[8]) - 48
    for weight, char in zip(range(8, 0, -1), digits[:8], strict=True):
        total += weight * (ord(char) - 48)
    return total % 10 == 0


_B64URL = "[A-Za-z0-9_-]"
_LEFT = "(?<![A-Za-z0-9_-]"  # each shape closes it right after its literal
# (gate characters, pattern, marker): the pattern runs only if a gate character occurs.
_SHAPES = tuple(
    (gates, re.compile(pattern), marker(kind))
    for gates, kind, pattern in (
        (
            "-",
            "private_key",
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:[^-]|-(?!----))*+"
            r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----)?",
        ),
        ("J", "jwt", rf"eyJ{_LEFT}eyJ){_B64URL}{{5,}}+\.{_B64URL}{{2,}}+\.{_B64URL}*+"),
        (
            "-_",
            "api_key",
            rf"sk{_LEFT}sk)(?:-{_B64URL}{{20,}}+|_(?:live|test)_[A-Za-z0-9]{{16,}}+)",
        ),
        ("_", "api_key", rf"rk_{_LEFT}rk_)(?:live|test)_[A-Za-z0-9]{{16,}}+"),
        ("-", "api_key", rf"x{_LEFT}x)(?:ox[abposr]|app)-[A-Za-z0-9-]{{10,}}+"),
        ("_", "api_key", rf"g{_LEFT}g)(?:h[pousr]_[A-Za-z0-9]{{36,}}+|ithub_pat_\w{{22,}}+)"),
        (
            "A",
            "api_key",
            rf"A{_LEFT}A)(?:[KS]IA[A-Z0-9]{{16}}(?![A-Za-z0-9])|Iza{_B64URL}{{35}}(?!{_B64URL}))",
        ),
    )
)
# A token needs a digit, or 16 characters of both cases, so that prose ("Bearer bonds")
# stays.
_BEARER = re.compile(
    r"(Bearer(?<![A-Za-z0-9]Bearer)[ \t]++)"
    r"(?:(?=[A-Za-z._~+/-]*+[0-9])[A-Za-z0-9._~+/-]{8,}+"
    r"|(?=[a-z._~+/-]*+[A-Z])(?=[A-Z._~+/-]*+[a-z])[A-Za-z._~+/-]{16,}+)=*+"
)
_URL_PASSWORD = re.compile(r"(://[^\s/@:]++:)[^\s/@]++(?=@)")
_EMAIL_LOCAL_REVERSED = re.compile(r"[A-Za-z0-9._%+-]{1,64}")
_EMAIL_DOMAIN = re.compile(r"[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)*\.[A-Za-z]{2,63}(?![A-Za-z0-9-])")
# The groups may give back (``+1 415 555 2671 2pm`` keeps `` 2`` out): each group is given
# back at most once per ``+``, so this stays linear.
_PHONE = re.compile(r"\+(?<![A-Za-z0-9]\+)[0-9]++(?:[ -](?:[0-9]++|\([0-9]++\)))*(?![A-Za-z0-9])")
_PHONE_GROUP = re.compile(r"[0-9]++\)?")
# From the first check digit, so that the scan skips to digits.
_IBAN = re.compile(
    r"[0-9](?<=[A-Z]{2}[0-9])(?<![A-Za-z0-9][A-Z]{2}[0-9])[0-9]"
    r"(?:[A-Z0-9]{11,30}+|(?: [A-Z0-9]{4})++(?: [A-Z0-9]{1,3})?+)(?![A-Za-z0-9])"
)
# Letters may touch a card number (``card4111…``), digits may not: a longer number is no
# card; nor are the groups after an IBAN's ``DE89 `` (an IBAN mod-97 refused stays whole).
_CARD_OR_BOT = re.compile(
    r"[0-9](?<![0-9][0-9])(?<![0-9][.,][0-9])(?<![A-Z]{2}[0-9]{2} [0-9])"
    rf"(?:(?P<bot>[0-9]{{7,9}}+:{_B64URL}{{35}}(?!{_B64URL}))"
    r"|(?:[0-9]{12,18}+|[0-9]{3}[ -][0-9]{3,6}+(?:[ -][0-9]{1,6}+(?![0-9]))*+)(?![0-9])"
    r"(?![.,][0-9]))"
)
# The digit scans test a character class at every position; a byte mask (digit → 0,
# A-Z → A, space or dash → space) first rules out texts that hold no 13 digits, no group
# of 4 then 3, no 8 digits and a colon, no letter and 9 digits, and no ``AA00``.
_MASK = bytes(
    48 if 48 <= b <= 57 else 65 if 65 <= b <= 90 else 32 if b in (32, 45) else 58 if b == 58 else 46
    for b in range(256)
)
# One search for the card and the national id hints: they share the four digits it skips to.
_DIGITS_HINT = re.compile(rb"0000(?:0{9}| 000|0000:|0{5}(?<=A0{9}))")
_IBAN_HINT = re.compile(rb"AA00")
_NATIONAL_ID_HINT = b"A000000000"
_NATIONAL_ID = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[1289][0-9]{8}+(?![A-Za-z0-9])")
_GROUP_SEPARATOR = re.compile(r"([ -])")
_IBAN_LENGTHS = {
    country: int(length)
    for country, length in re.findall(
        "([A-Z]{2})([0-9]{2})",
        "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22"
        " DJ27 DK18 DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21"
        " HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 MC27"
        " MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 QA29 RO24 RS22"
        " RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24"
        " XK20 YE30",
    )
}


def _shapes(text: str) -> str:
    for gates, regex, replacement in _SHAPES:
        # A plain loop: a generator for any() would cost more than the tests themselves.
        for gate in gates:
            if gate in text:
                text = regex.sub(replacement, text)
                break
    if "B" in text:
        text = _BEARER.sub(lambda match: match[1] + marker("bearer"), text)
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda match: match[1] + marker("secret"), text)
    return text


def _emails(text: str) -> str:
    """E-mail addresses, read outwards from each ``@`` rather than by a scan of every word."""
    pieces: list[str] = []
    done = 0
    at = text.find("@")
    while at != -1:
        local = _EMAIL_LOCAL_REVERSED.match(text[max(done, at - 64) : at][::-1])
        domain = _EMAIL_DOMAIN.match(text, at + 1)
        if local and domain:
            pieces += (text[done : at - local.end()], marker("email"))
            done = domain.end()
        at = text.find("@", max(at + 1, done))
    return "".join([*pieces, text[done:]]) if pieces else text


def _phone(match: re.Match[str]) -> str:
    """8 to 15 digits are a phone number. More are a card number after a ``+``, left to
    the card pass, or a phone number followed by other numbers: it ends after the last
    group that keeps it within 15 digits, or earlier if a card number starts there
    (``+1 415 555 2671 4111 1111 1111 1111``)."""
    found = match[0]
    digits, ends = 0, []
    for group in _PHONE_GROUP.finditer(found):
        digits += len(group[0].rstrip(")"))
        if digits > 15:
            break
        if digits >= 8:
            ends.append(group.end())
    if not ends or ends[-1] == len(found):
        return marker("phone") if ends else found
    if _starts_a_card(found, 0):
        return found
    cut = next((end for end in reversed(ends) if _starts_a_card(found, end)), ends[-1])
    return marker("phone") + found[cut:]


def _starts_a_card(text: str, end: int) -> bool:
    card = _CARD_OR_BOT.match(text, end + 1)
    return card is not None and _card_or_bot(card).startswith(marker("card"))


def _national_id(match: re.Match[str]) -> str:
    return marker("national_id") if national_id_valid(match[0]) else match[0]


def _ibans(text: str) -> str:
    pieces: list[str] = []
    done = 0
    for match in _IBAN.finditer(text):
        start = match.start() - 2
        found = text[start : match.end()]
        compact = found.replace(" ", "")
        length = _IBAN_LENGTHS.get(found[:2], len(compact))
        # Grouped in fours, the IBAN may be followed by more groups; run together, not.
        end = length + (length - 1) // 4 if " " in found else len(found)
        whole = 15 <= length <= len(compact) and found[end : end + 1] in ("", " ")
        if whole and mod97_valid(compact[:length]):
            pieces += (text[done:start], marker("iban"))
            done = start + end
    return "".join([*pieces, text[done:]]) if pieces else text


def _card_or_bot(match: re.Match[str]) -> str:
    """A bot token, or each Luhn-valid run of up to six digit groups, becomes a marker."""
    if match["bot"] is not None:
        return marker("api_key")
    parts = _GROUP_SEPARATOR.split(match[0])
    groups, out, start = parts[::2], [], 0
    while start < len(groups):
        for end in range(min(len(groups), start + 6), start, -1):
            digits = "".join(groups[start:end])
            if 13 <= len(digits) <= 19 and luhn_valid(digits):
                out.append(marker("card"))
                break
        else:
            end = start + 1
            out.append(groups[start])
        if end < len(groups):
            out.append(parts[2 * end - 1])
        start = end
    return "".join(out)


def redact_shapes(text: str) -> str:
    """`text` with every layer-1 shape replaced by its marker; markers are never matched.

    Card numbers: 13 to 19 digits, plain or in groups split by single spaces or
    dashes, Luhn-valid, not part of a longer number. IBANs: upper case, plain
    or in groups of four, of their country's length, mod-97-valid. Phone
    numbers: ``+`` and 8 to 15 digits. Taiwanese national ids: an upper-case
    letter, 1, 2, 8 or 9, eight digits, checksum-valid (:func:`national_id_valid`),
    not inside a longer run of letters and digits. ``Bearer`` tokens need a
    digit, or 16 characters of both cases. A PEM private key
    without its END line is redacted to the next ``-----``.
    The passes run most specific first, so a JWT after ``Bearer`` reads
    ``[REDACTED:jwt]`` and the account inside an IBAN is not taken for a card;
    e-mail addresses come after numbers, whose last digits they could swallow,
    and national ids after e-mail addresses, which take an id before an ``@``
    whole.
    """
    text = _shapes(text)
    if "+" in text:
        text = _PHONE.sub(_phone, text)
    mask = text.encode(errors="surrogatepass").translate(_MASK)
    if _IBAN_HINT.search(mask):
        text = _ibans(text)
    digits = _DIGITS_HINT.search(mask) is not None
    if digits:
        text = _CARD_OR_BOT.sub(_card_or_bot, text)
    text = _emails(text)
    # The mask predates the passes above, but their markers hold no digit: a letter and
    # nine digits found now were there then.
    if digits and _NATIONAL_ID_HINT in mask:
        text = _NATIONAL_ID.sub(_national_id, text)
    return text
