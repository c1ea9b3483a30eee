"""Base class of the data-source layers: seed, read position, prefetch, sharding.

A source produces batch number ``b`` (counted from 0 since the start of training) as a pure
function of ``(seed, b)`` and the dataset, so the read position is just the number of batches the
Net has *consumed*; prefetched batches are recomputed after a resume.

In data-parallel training each rank reads every ``world_size``-th batch (see :meth:`set_shard`);
the saved read position counts the batches of all ranks together, so a solverstate does not
depend on the number of processes that wrote it or that resume it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from prunekit.data.prefetch import Prefetcher
from prunekit.errors import PrunekitError
from prunekit.net.layers.base import TRAIN, CaffeLayer


def describe(param, phase: int) -> str:
    """"layer 'mnist' (Data, TRAIN)": the prefix of every error message of a source."""
    return f"layer '{param.name}' ({param.type}, {'TRAIN' if phase == TRAIN else 'TEST'})"


def rng_for(seed: int, stream: int, index: int) -> np.random.Generator:
    """A generator that depends only on (seed, stream, index); streams keep uses independent.

    Streams: 0 = per-batch crops/mirrors, 1 = per-epoch shuffles, 2 = rand_skip, 3 = fillers.
    """
    return np.random.default_rng([seed % 2**64, stream, index])


class DataSource(CaffeLayer):
    """A Caffe layer that produces its tops; the Net calls :meth:`next_batch`.

    Subclasses set ``self._top_shapes`` and ``self.prefetch`` in ``__init__`` and implement
    :meth:`_batches`. Note on ``state_dict``: called with no arguments it returns the read position;
    called with torch's arguments (by a parent module) it behaves like ``nn.Module.state_dict``.
    """

    is_data = True
    needs_backward = False

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        self.where = describe(param, phase)
        self.num_tops = len(param.top)
        self.seed = 0
        self._local = 0  # batches consumed by this rank since global batch self._base
        self._base = 0  # global batch number of this rank's local batch 0 (before the rank offset)
        self.rank, self.world_size = 0, 1
        self.prefetch = 0
        self._top_shapes: list[tuple[int, ...]] = []
        self._feeder: Prefetcher | None = None
        self._pin = torch.cuda.is_available()
        self.wait_s = 0.0  # seconds next_batch spent waiting for batches (training log's data wait)

    def top_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the tops (batch dimension first), known from construction on."""
        return list(self._top_shapes)

    def set_seed(self, seed: int) -> None:
        """Seed of all randomness (crops, mirrors, shuffles, fillers); restarts prefetch."""
        self.seed = int(seed)
        self._restart()

    def set_shard(self, rank: int, world_size: int) -> None:
        """Data-parallel sharding: from the current position on, local batch b is global batch
        ``position + b * world_size + rank``.

        Like Caffe's multi-GPU data layer, the ranks read interleaved, disjoint batches: with
        batch size B, the ranks' batches k together are the records a single process with batch
        ``world_size·B`` (or ``iter_size = world_size``) reads in its batch (iteration) k, so no
        record is read twice or skipped.
        """
        if not 0 <= rank < world_size:
            raise PrunekitError(f"{self.where}: rank {rank} is not in [0, {world_size})")
        self._base = self.global_position()
        self._local = 0
        self.rank, self.world_size = int(rank), int(world_size)
        self._restart()

    def global_batch(self, local: int) -> int:
        """The dataset-wide batch number of this rank's batch ``local``."""
        return self._base + local * self.world_size + self.rank

    def global_position(self) -> int:
        """Batches consumed by all ranks together (ranks consume in lockstep)."""
        return self._base + self._local * self.world_size

    @property
    def batches_consumed(self) -> int:
        """The read position: batches consumed (by all ranks together)."""
        return self.global_position()

    def next_batch(self) -> list[torch.Tensor]:
        """The next batch: one CPU tensor per top (data float32 NCHW, labels float32 (N,))."""
        if self._feeder is None:
            self._before_prefetch()
            self._feeder = Prefetcher(self._batches, self._local, self.prefetch,
                                      name=f"prefetch {self.layer_name}")
        began = time.perf_counter()
        batch = self._feeder.get()
        self.wait_s += time.perf_counter() - began
        self._local += 1
        return batch

    def _before_prefetch(self) -> None:
        """Called in the training thread before a prefetch thread starts (e.g. to fork workers)."""

    def forward(self, *bottoms: torch.Tensor):
        """Same as :meth:`next_batch`, shaped like other layers' outputs (tensor or tuple)."""
        tops = self.next_batch()
        return tops[0] if len(tops) == 1 else tuple(tops)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict:
        """The read position ``{"batches": consumed by all ranks, "seed": seed}`` (see class
        docstring)."""
        if args or kwargs:
            return super().state_dict(*args, **kwargs)
        return {"batches": self.global_position(), "seed": self.seed}

    def load_state_dict(self, state: dict, strict: bool = True, assign: bool = False) -> None:
        """Continue from a saved read position: the next global batch is ``state["batches"]``
        (this rank's next batch is that plus its rank)."""
        if "batches" not in state:
            raise PrunekitError(f"{self.where}: saved data state has no 'batches' entry")
        self._base = int(state["batches"])
        self._local = 0
        self.seed = int(state.get("seed", self.seed))
        self._restart()

    def close(self) -> None:
        """Stop the prefetch thread; a later next_batch starts a new one."""
        self._restart()

    def _restart(self) -> None:
        if self._feeder is not None:
            self._feeder.close()
            self._feeder = None

    def _new_tensor(self, shape: tuple[int, ...]) -> torch.Tensor:
        """An uninitialised float32 CPU tensor, page-locked when CUDA is there (fast H2D copies)."""
        return torch.empty(shape, dtype=torch.float32, pin_memory=self._pin)

    def _batches(self, start: int) -> Iterator[list[torch.Tensor]]:
        """Endless iterator of this rank's batches ``start``, ``start + 1``, ..."""
        raise NotImplementedError

    def _check_tops(self, allowed: tuple[int, ...]) -> None:
        if self.num_tops not in allowed:
            raise PrunekitError(
                f"{self.where}: needs {' or '.join(map(str, allowed))} tops, has {self.num_tops}"
            )
