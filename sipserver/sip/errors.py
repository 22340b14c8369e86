"""The one exception the protocol layer raises for input it cannot accept."""


class ParseError(ValueError):
    """Raised for bytes that are not an acceptable SIP message or element.

    `reason` is a short human-readable explanation, suitable for a log line or
    for the reason phrase of a 400 reply (it never contains CR or LF).
    """

    def __init__(self, reason: str) -> None:
        reason = reason.replace("\r", " ").replace("\n", " ")
        super().__init__(reason)
        self.reason = reason
