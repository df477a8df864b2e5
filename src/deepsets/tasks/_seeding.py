"""Counter-based seeding: a random stream that is a pure function of ``(seed, ...)``.

Resuming training mid-stream, or drawing on another rank, must not depend on how many
numbers were drawn before. Every batch therefore gets its own generator, seeded by a hash
of ``(seed, stream, rank, step)``.
"""

from __future__ import annotations

import hashlib

import torch

__all__ = ["generator_for", "mix_seed"]

_MASK_63 = (1 << 63) - 1


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers, well mixed (SHA-256), stable across runs and platforms."""
    text = ",".join(str(int(p)) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & _MASK_63


def generator_for(*parts: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded by :func:`mix_seed` of ``parts``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(mix_seed(*parts))
    return generator
