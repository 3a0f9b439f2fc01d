"""The one rule for account ids, shared by the vault and its clients (vault-protocol §7.1).

An account id is 1 to 128 ASCII characters: letters, digits and ``. _ - @ + : | = ~``,
starting with a letter or a digit.  That covers user names, e-mail addresses,
UUIDs, numeric ids and the ``provider|id`` subjects of common auth services,
and every such id is exactly one path segment of ``/v1/accounts/{account}``
(no ``/``, ``%``, ``?``, ``#``, space or non-ASCII character: no decoding step
can split it, and no Unicode normalisation can make two texts name one
account).

The client checks before it sends anything, the vault on every request and
on every account it creates (standalone tokens) or accepts (a JWT's ``sub``);
both raise :class:`~strongroom.errors.InvalidAccountId`.
"""

from __future__ import annotations

import re

from ..errors import InvalidAccountId

MAX_ACCOUNT_ID = 128
_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+:|=~-]{0,127}")
#: The rule in words (error messages, ``--help``).
ACCOUNT_ID_RULE = ("1 to 128 ASCII letters, digits and . _ - @ + : | = ~, "
                   "starting with a letter or a digit")


def is_valid_account_id(account_id: object) -> bool:
    """Whether ``account_id`` follows the rule (never raises)."""
    return isinstance(account_id, str) and _RULE.fullmatch(account_id) is not None


def check_account_id(account_id: object) -> bytes:
    """Validate an account id; return it as bytes (ASCII, the OPAQUE credential identifier).

    ``InvalidAccountId`` says which part of the rule is broken; it never echoes
    the id itself (an id pasted into the wrong option may be a token).
    """
    if isinstance(account_id, str) and _RULE.fullmatch(account_id):
        return account_id.encode("ascii")
    if not isinstance(account_id, str) or not account_id:
        why = "an account id cannot be empty"
    elif len(account_id) > MAX_ACCOUNT_ID:
        why = f"that account id has {len(account_id)} characters; at most {MAX_ACCOUNT_ID}"
    elif not account_id.isascii():
        why = "that account id has a non-ASCII character"
    elif "/" in account_id:
        why = "that account id contains '/'"
    elif not account_id[0].isalnum():
        why = "an account id must start with a letter or a digit"
    else:
        why = "that account id contains a character that is not allowed"
    raise InvalidAccountId(f"{why} (an account id is {ACCOUNT_ID_RULE})",
                           hint="use the account id the vault's operator or the chat app gave you")


__all__ = ["ACCOUNT_ID_RULE", "MAX_ACCOUNT_ID", "check_account_id", "is_valid_account_id"]
