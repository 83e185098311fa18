"""One root exception for the project, with specific subclasses.

Messages say what was expected and what was found, so a user can fix the input without reading
the code.
"""

from __future__ import annotations


class RoboMirrorError(Exception):
    """Root of every error the engine raises on purpose."""


class ConfigError(RoboMirrorError):
    """A configuration value is unknown, of the wrong type or out of range."""


class FormatVersionError(RoboMirrorError):
    """A file was written by a newer format than this code understands."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        super().__init__(
            f"{path}: format_version {found} is newer than this code supports ({supported}); "
            "upgrade robomirror to read it"
        )


class IntegrityError(RoboMirrorError):
    """A published artefact does not match its sidecar (size, sha256 or member list)."""


class SourceError(RoboMirrorError):
    """A source item (sequence file, video, CSV) cannot be turned into clips.

    Attributes:
        reason: a typed reason from `ingest.failures.Reason` (a short snake_case word).
        path: the offending file.
    """

    def __init__(self, reason: str, path: str, detail: str) -> None:
        reason = str(getattr(reason, "value", reason))  # accept the Reason enum or its value
        super().__init__(f"{reason}: {path}: {detail}")
        self.reason = reason
        self.path = path
        self.detail = detail


class ReadOnlyError(RoboMirrorError):
    """A write statement was sent to a read-only SQL surface."""


class InfrastructureError(RoboMirrorError):
    """The machine, not the input, failed (read-only or full data root, EIO, a vanished source root):
    the run stops with a non-zero exit and publishes (and deletes) nothing."""
