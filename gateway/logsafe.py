"""Log lines that cannot be forged: every control character is escaped.

A request path is attacker-chosen, and aiohttp decodes `%0a` in it to a real
line feed, so `GET /%0a2026-01-01 ... forged` would otherwise write a second,
fake log line. `SafeFormatter` escapes C0/C1 controls, line and paragraph
separators and the bidirectional overrides in the message, and indents every
line of a traceback, so a line that starts at column 0 is always a real entry.
`fristed serve` installs it on the root logger; `fristed audit` uses
`escape_controls` for what it prints.
"""

import logging
import sys
import unicodedata

# Characters that are not control characters to unicodedata but reorder or
# hide text on a terminal (Trojan Source, CVE-2021-42574).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ESCAPE_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """`text` on one line: backslash and every control character as a `\\xNN`/`\\uNNNN` escape."""
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch in _BIDI or unicodedata.category(ch) in _ESCAPE_CATEGORIES:
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)


class SafeFormatter(logging.Formatter):
    """The message on one escaped line; a traceback below it, every line indented and escaped."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        extra = []
        if record.exc_info:
            extra.append(self.formatException(record.exc_info))
        if record.stack_info:
            extra.append(self.formatStack(record.stack_info))
        for block in extra:
            line += "".join("\n  | " + escape_controls(part) for part in block.splitlines())
        return line


def configure(level: str) -> None:
    """Log to stderr through `SafeFormatter` (called by `fristed serve`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
