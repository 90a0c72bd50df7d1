"""User-facing errors. The CLI prints the one-line message and exits with code 2."""


class LatentlabError(Exception):
    """A user-facing error: the CLI prints its one-line message and exits with code 2."""


class ConfigError(LatentlabError):
    """Bad config key, type or value."""


class DataError(LatentlabError):
    """Missing, corrupt or inconsistent data."""


class NonFiniteLossError(LatentlabError):
    """A loss became NaN or infinite."""
