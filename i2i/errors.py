"""User-facing errors: the CLI prints their message on one line and exits with code 2."""


class UserError(Exception):
    """A problem with the user's input (paths, images, configs, options), not a bug in i2i."""

    exit_code = 2

    def __init__(self, message: str = "", detail: str | None = None):
        super().__init__(message)
        self.detail = detail  # the underlying library's own text, printed by `i2i --verbose`


class DataError(UserError):
    """A dataset folder, image or video that cannot be used as given."""


class ConfigError(UserError):
    """A train_config.json or option combination that is invalid or unsupported."""


class CheckpointError(UserError):
    """A run directory or checkpoint that is missing, incomplete or corrupt."""


class WriteError(UserError):
    """An output that cannot be written: disk full, a file-size limit, permissions, or a file where
    a folder is needed. Whatever was half-written has been removed."""


class FolderInUseError(WriteError):
    """Another process writes into the output folder (or the same part of it) now."""


class TrainingDiverged(UserError):
    """Training produced a non-finite loss; the last good checkpoint is kept."""


class MissingDependencyError(UserError):
    """An optional dependency that the requested feature needs is not installed."""


def one_line(error: UserError) -> str:
    """The user-facing sentence of an error, also when a data-loader worker raised it
    (PyTorch re-raises worker errors with the whole worker traceback as the message)."""
    text = str(error).strip()
    if "Original Traceback" in text:
        text = text.splitlines()[-1].split(": ", 1)[-1]
    return text.splitlines()[0] if text else type(error).__name__
