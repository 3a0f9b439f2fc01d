"""The header of a WhatsApp export line (date, time, optional AM/PM) and the date order.

Android writes ``31/12/20, 23:59 - Name: text``; iOS writes ``[31/12/20, 23:59:59] Name:
text``.  Locales vary the date order and separator, the clock (12 or 24 hours, the AM/PM
word before or after the time, with dots and spaces: ``a. m.``), seconds, a ``klo`` word,
and the spaces (U+00A0, U+202F).  The date order is decided once for the whole file by
:func:`infer_order`, never line by line: a file where one first field is 13 or more is
day-first throughout.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

_S = "[ \u00a0\u202f]"
# Each locale's AM/PM word; the key is the word with dots and spaces removed, lowercased.
MERIDIEM = {
    "am": "am", "pm": "pm", "vorm": "am", "nachm": "pm", "fm": "am", "em": "pm",
    "ap": "am", "ip": "pm", "πμ": "am", "μμ": "pm", "午前": "am", "午後": "pm",
    "上午": "am", "下午": "pm", "오전": "am", "오후": "pm", "ص": "am", "م": "pm",
}
_AP = (rf"(?:[AaPp]\.?{_S}?[Mm]\.?|vorm\.|nachm\.|fm|em|ap\.|ip\.|[πμ]\.?{_S}?μ\.?"
       r"|午前|午後|上午|下午|오전|오후|ص|م)")

_PATTERN = (
    rf"""[\u200e\u200f\ufeff]*(?P<lb>\[)?
    (?P<a>\d{{1,4}})(?P<sep>[./-]){_S}?(?P<b>\d{{1,2}})(?P=sep){_S}?(?P<c>\d{{1,4}})\.?
    ,?{_S}+(?:klo{_S}+)?
    (?:(?P<ap0>{_AP}){_S}?)?
    (?P<H>\d{{1,2}})[:.](?P<M>\d{{2}})(?:[:.](?P<sec>\d{{2}}))?
    (?:{_S}?(?P<ap>{_AP}))?\.?
    (?(lb)\]{_S}|{_S}?[-–]{_S})
    (?P<rest>[^\n]*)""")
HEADER = re.compile(_PATTERN, re.VERBOSE)
# The same, found anywhere a line starts in a whole text (one C-level scan, no split).
HEADER_AT_LINE = re.compile(r"(?:^|(?<=\n))" + _PATTERN, re.VERBOSE)

DMY, MDY, YMD = "dmy", "mdy", "ymd"


def infer_order(firsts: Sequence[int], seconds: Sequence[int], years: Sequence[int],
                year_first: bool, sep: str, twelve_hour: bool) -> str:
    """The date order of a whole file, from every header's first two date fields.

    A field above 12 is a day.  When neither says so (every day of the file is 12 or
    less), the order under which the dates run forward with fewer steps back wins; a tie
    falls to the locale habit: ``/`` with a 12-hour clock is the US month-first order.
    """
    if year_first:
        return YMD
    day_first = any(a > 12 for a in firsts)
    month_first = any(b > 12 for b in seconds)
    if day_first != month_first:
        return DMY if day_first else MDY
    if day_first:  # both: the order under which more lines are valid dates wins
        bad_dmy = sum(1 for b in seconds if b > 12)
        bad_mdy = sum(1 for a in firsts if a > 12)
        return DMY if bad_dmy <= bad_mdy else MDY
    back_dmy = _steps_back(list(zip(years, seconds, firsts, strict=True)))
    back_mdy = _steps_back(list(zip(years, firsts, seconds, strict=True)))
    if back_dmy != back_mdy:
        return DMY if back_dmy < back_mdy else MDY
    return MDY if sep == "/" and twelve_hour else DMY


def _steps_back(dates: list[tuple[int, int, int]]) -> int:
    """How often the (year, month, day) sequence goes backwards."""
    return sum(1 for x, y in itertools.pairwise(dates) if y < x)


def iso_date(a: str, b: str, c: str, order: str) -> str | None:
    """``YYYY-MM-DD`` of the three date fields under *order*, or None if no such date."""
    if order == YMD:
        y, m, d = int(a), int(b), int(c)
    elif order == DMY:
        d, m, y = int(a), int(b), int(c)
    else:
        m, d, y = int(a), int(b), int(c)
    if y < 100:
        y += 2000
    if not (1 <= m <= 12 and 1 <= d <= _days_in(y, m)) or y > 9999:
        return None
    return f"{y:04d}-{m:02d}-{d:02d}"


def _days_in(y: int, m: int) -> int:
    if m == 2:
        return 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    return 30 if m in (4, 6, 9, 11) else 31


_UNDOTTED = str.maketrans("", "", ". \u00a0\u202f")


def iso_time(h: str, m: str, s: str | None, meridiem: str | None) -> str | None:
    """``HH:MM:SS`` (seconds ``00`` when the source has none), or None if out of range."""
    hour, minute, second = int(h), int(m), int(s) if s else 0
    if meridiem is not None:
        half = MERIDIEM.get(meridiem.translate(_UNDOTTED).lower())
        if half is None or not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return f"{hour:02d}:{minute:02d}:{second:02d}"
