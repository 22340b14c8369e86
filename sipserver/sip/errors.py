"""The one exception the protocol layer raises for input it cannot accept."""


class ParseError(ValueError):
    """Raised for bytes that are not an acceptable SIP message or element.

    `reason` is a short human-readable explanation, suitable for a log line or
    for the reason phrase of a reply (it never contains CR or LF). `status` is
    the reply a server should send when the input was a request it can still
    answer: 400 unless something more precise fits (505 for an unsupported
    SIP version, 513 for a message that is too large).
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        reason = reason.replace("\r", " ").replace("\n", " ")
        super().__init__(reason)
        self.reason = reason
        self.status = status
