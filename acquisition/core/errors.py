"""The project's exceptions: one root, a few specific kinds, messages a researcher can act on."""


class DeconfoundError(Exception):
    """Root of every error Deconfound raises on purpose."""


class ConfigError(DeconfoundError):
    """A configuration (policy file, world file, CLI option) is invalid."""


class NotFoundError(DeconfoundError):
    """A referenced record (annotator, served pair, prompt, response) does not exist."""


class LabelError(DeconfoundError):
    """A label was refused: wrong annotator, unknown pair, or an invalid choice."""


class StalePairError(LabelError):
    """The answer was for a pair that is no longer the annotator's open pair (answered or
    skipped elsewhere, or replaced after its lease ran out); nothing was written."""


class StorageError(DeconfoundError):
    """The database could not be read or written (disk full, read-only, locked, damaged)."""


class StudyComplete(DeconfoundError):
    """The annotator has reached the study's quota; the message is the completion message."""

    def __init__(self, message: str, code: str = "", url: str = "") -> None:
        super().__init__(message)
        self.code, self.url = code, url


class AuthError(DeconfoundError):
    """A token or password did not match."""


class ImportFormatError(DeconfoundError):
    """An input file is malformed; the message names the file, line and field."""
