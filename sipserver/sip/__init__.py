"""Pure SIP protocol code: parsing, typed header views, lumps, builders.

Nothing in this package does I/O. Message text is handled as latin-1 `str`
(one char per byte), so offsets are byte offsets and every octet survives.
"""

from .errors import ParseError
from .message import Header, SipMsg, parse_message

__all__ = ["Header", "ParseError", "SipMsg", "parse_message"]
