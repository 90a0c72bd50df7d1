"""What an evaluation returns: metric values with the protocol that produced them (ground floor: every layer
may import it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class EvalResult:
    """Metric values plus the protocol that produced them (so numbers are never orphaned)."""

    metrics: dict[str, float]
    protocol: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> file path
    summary: str = ""                                         # one line a person reads first (printed by the CLI)
