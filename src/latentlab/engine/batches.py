"""Training data streams whose position is part of the checkpoint.

``ShuffledBatches`` draws a fresh seeded permutation each epoch and hands every process its slice
of the *global* batch, so N processes see exactly the samples one process would (DDP equivalence).
``SampledBatches`` draws from a synthetic distribution with its own checkpointed generator.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError


class ShuffledBatches:
    def __init__(self, tensors: dict[str, torch.Tensor], batch_size: int, seed: int,
                 rank: int = 0, world: int = 1):
        n = len(next(iter(tensors.values())))
        if batch_size % world:
            raise ConfigError(f"config key 'batch_size' = {batch_size} is invalid: must divide by {world} processes")
        if batch_size > n:
            raise ConfigError(f"config key 'batch_size' = {batch_size} is invalid: dataset has only {n} samples")
        self.tensors, self.n, self.batch_size, self.seed = tensors, n, batch_size, seed
        self.rank, self.world = rank, world
        self.epoch, self.pos = 0, 0
        self._perm_epoch, self._perm = -1, None

    def _permutation(self) -> torch.Tensor:
        if self._perm_epoch != self.epoch:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            self._perm, self._perm_epoch = torch.randperm(self.n, generator=g), self.epoch
        return self._perm

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self.pos + self.batch_size > self.n:  # drop the ragged tail, start a new epoch
            self.epoch, self.pos = self.epoch + 1, 0
        idx = self._permutation()[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        per = self.batch_size // self.world
        idx = idx[self.rank * per:(self.rank + 1) * per]
        return {k: t[idx] for k, t in self.tensors.items()}

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.batch_size

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])


class SampledBatches:
    """Batches ``{"x": (B/world, dim)}`` drawn from ``dist.sample`` with a dedicated generator."""

    def __init__(self, dist, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        if batch_size % world:
            raise ConfigError(f"config key 'batch_size' = {batch_size} is invalid: must divide by {world} processes")
        self.dist, self.per = dist, batch_size // world
        self.gen = torch.Generator().manual_seed(seed * 1009 + rank)

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        return {"x": self.dist.sample(self.per, generator=self.gen)}

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])


class Streams:
    """Named streams drawn together: ``next`` -> ``{name: batch of that stream}``. Each stream keeps its own
    seeded order and position, checkpointed under its name, so exact resume holds for two-stream methods
    (domain adaptation's source and target, CycleGAN's two unpaired domains)."""

    def __init__(self, streams: dict):
        if not streams:
            raise ConfigError("Streams: no stream given")
        self.streams = dict(streams)

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, dict[str, torch.Tensor]]:
        return {name: next(s) for name, s in self.streams.items()}

    def __getitem__(self, name: str):
        return self.streams[name]

    def state_dict(self) -> dict:
        return {name: s.state_dict() for name, s in self.streams.items()}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != set(self.streams):
            raise ConfigError(f"saved streams {sorted(state)} are not this method's {sorted(self.streams)}")
        for name, s in self.streams.items():
            s.load_state_dict(state[name])


def stream_seed(seed: int, name: str) -> int:
    """A stream's own seed: the run's seed mixed with the stream's name (stable across processes and runs)."""
    import zlib
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % 2**31
