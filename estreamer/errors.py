"""The project's exception types. Every failure a user can meet is one of these, with a
message written to be read by a person."""


class EstreamerError(Exception):
    """Base class for every error this project raises on purpose."""


class ProtocolError(EstreamerError):
    """The peer sent bytes that break the eStreamer protocol."""

    def __init__(self, message: str, offset: int | None = None):
        super().__init__(message)
        self.offset = offset

    def __str__(self) -> str:
        text = super().__str__()
        return text if self.offset is None else f"{text} (at byte {self.offset})"


class FramingError(ProtocolError):
    """The 8-byte message header is unusable. `recoverable` says whether the framer could
    still skip the message by its length and go on with the next one."""

    def __init__(self, message: str, offset: int | None = None, recoverable: bool = False):
        super().__init__(message, offset)
        self.recoverable = recoverable


class DecodeError(ProtocolError):
    """A message body, record or block does not fit its layout."""


class ConfigError(EstreamerError):
    """The configuration cannot be used as written."""


class TlsSetupError(ConfigError):
    """The TLS credentials (PKCS#12, CA file, TLS version) cannot be used as configured.
    A ConfigError because the fix is always in the files or settings, not in the network."""


class OutputError(EstreamerError):
    """An output could not take or keep records (disk full, collector gone); the bookmark
    stays where it was, so nothing is lost."""
