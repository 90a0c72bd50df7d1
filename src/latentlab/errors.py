"""User-facing errors. The CLI prints the one-line message and exits with code 2."""


class LatentlabError(Exception):
    """A user-facing error: the CLI prints its one-line message and exits with code 2."""


class ConfigError(LatentlabError):
    """Bad config key, type or value."""


class DataError(LatentlabError):
    """Missing, corrupt or inconsistent data."""


class NonFiniteLossError(LatentlabError):
    """A loss became NaN or infinite."""


def describe_exception(e: BaseException, limit: int = 200) -> str:
    """``Type: first line`` of an exception for a one-line message (the second line too where the first only
    announces it, as in PyTorch's "Error(s) in loading state_dict for X:")."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = " ".join(lines[:2]) if lines and lines[0].endswith(":") else (lines[0] if lines else "")
    return f"{type(e).__name__}: {text[:limit]}" if text else type(e).__name__
