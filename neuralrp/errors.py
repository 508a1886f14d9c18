"""The one exception tree of NeuralRP.

    NeuralRPError                  base; str(e) is a sentence a user can act on
      ConfigError                  bad config.yaml / environment value (start fails)
      DatabaseError                the SQLite file or an extension cannot be used
        MigrationError             a migration failed; nothing of it was kept
      NotFound                     (-> 404)
      Conflict                     (-> 409)
        MaintenanceMode            (-> 409) a restore is running; writes are refused until it ends
      ServiceUnavailable           (-> 503) the app is starting or stopping
      InvalidInput                 (-> 400/422) bad upload, bad field, bad file
        PayloadTooLarge            (-> 413) over a size limit in bytes or pixels
      BackendError                 an LLM or image server misbehaved
        BackendUnavailable         (-> 503) cannot connect, timed out, not configured
        BackendBadResponse         (-> 502) non-2xx answer or a body we cannot read
          ContextOverflow          (-> 502) the prompt did not fit the model's window
        NotSupportedByBackend      (-> 422) the server has no way to do what was asked (e.g. Continue)
        GenerationAborted          the user pressed Stop
"""

from __future__ import annotations


class NeuralRPError(Exception):
    """Base class: every error NeuralRP raises on purpose."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(NeuralRPError):
    """Settings could not be loaded; the message names the key."""


class DatabaseError(NeuralRPError):
    """The database file or one of its extensions is unusable."""


class MigrationError(DatabaseError):
    """A schema migration failed and was rolled back."""


class NotFound(NeuralRPError):
    """A requested object does not exist."""

    status_code = 404


class Conflict(NeuralRPError):
    """The request clashes with stored state."""

    status_code = 409


class MaintenanceMode(Conflict):
    """A restore is swapping the database; writes are refused until it ends."""


class ServiceUnavailable(NeuralRPError):
    """The app is starting up or shutting down."""

    status_code = 503


class InvalidInput(NeuralRPError):
    """Input (a file, a field, a request) is malformed."""

    status_code = 422


class PayloadTooLarge(InvalidInput):
    """Input is over a size limit (bytes or pixels); the message names the limit."""

    status_code = 413


class BackendError(NeuralRPError):
    """An external server (LLM or image) failed."""

    status_code = 502

    def __init__(self, message: str, *, backend: str = "llm") -> None:
        super().__init__(message)
        self.backend = backend


class BackendUnavailable(BackendError):
    """The backend cannot be reached, timed out, or is not configured."""

    status_code = 503


class BackendBadResponse(BackendError):
    """The backend answered with an error status or an unreadable body."""

    status_code = 502

    def __init__(self, message: str, *, backend: str = "llm", status: int | None = None) -> None:
        super().__init__(message, backend=backend)
        self.status = status


class ContextOverflow(BackendBadResponse):
    """The prompt was longer than the model's context window."""


class StreamCutShort(BackendBadResponse):
    """A stream ended without a finish reason (the server was interrupted or went away): the reply is incomplete."""

    DEFAULT = ("The LLM server's stream ended before the reply was finished (no finish reason came: the server "
               "was interrupted or went away)")

    def __init__(self, message: str = DEFAULT, *, backend: str = "llm") -> None:
        super().__init__(message, backend=backend)


class NotSupportedByBackend(BackendError):
    """The server has no way to do what was asked (e.g. continue a reply); the message says what would."""

    status_code = 422


class BackendTimeout(BackendError):
    """A background LLM call held the server longer than llm.background_timeout_s and was stopped."""

    status_code = 504


class GenerationAborted(BackendError):
    """Generation was stopped on purpose by the user."""

    status_code = 499
