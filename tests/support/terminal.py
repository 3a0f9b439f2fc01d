"""Reading what a child process drew on a pseudo-terminal."""

from __future__ import annotations

import os


def read_until_closed(master: int, into: list[bytes] | None = None) -> bytes:
    """Read the master side of a pty until the child closes the terminal; all of it.

    ``into``, if given, receives each piece as it arrives (for a reader thread
    whose caller may give up waiting).  Linux answers EIO, not EOF, once the
    last writer is gone.
    """
    pieces = into if into is not None else []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not data:
            break
        pieces.append(data)
    return b"".join(pieces)
