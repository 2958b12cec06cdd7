"""Seed handling shared by every random function: an int, ``None`` or a Generator."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where a torch generator is made, so `import metacadi` stays light
    import torch

SeedLike = int | np.random.Generator | None


def as_rng(seed: SeedLike) -> np.random.Generator:
    """Return a numpy Generator: the one given, or a new one seeded with ``seed``."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def torch_generator(seed: SeedLike, device: str | torch.device = "cpu") -> torch.Generator:
    """Return a torch Generator seeded from ``seed`` (drawing a seed from it if it is a Generator)."""
    import torch

    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2**62))
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(int(seed))
    return generator
