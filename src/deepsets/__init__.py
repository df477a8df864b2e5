"""deepsets: permutation-invariant and permutation-equivariant networks on sets.

The four models of Zaheer et al. (2017) with exact masking, weighted sets and
sum / mean / max pooling. See https://arxiv.org/abs/1703.06114.
"""

from . import attention, functional, ragged, serialization, streaming, testing
from .attention import (
    ISAB,
    PMA,
    SAB,
    GatedAttentionPooling,
    MultiheadAttentionBlock,
    SetTransformer,
)
from .functional import masked_pool, segment_pool
from .layers import PermutationEquivariantLayer
from .models import DeepSetsConditional, DeepSetsEquivariant, DeepSetsInvariant
from .ragged import BucketBatchSampler, collate, pack_sets, pad_sets
from .serialization import load_pretrained
from .streaming import PoolingState

__version__ = "0.1.0"

#: The seed's name for :func:`deepsets.functional.masked_pool`, kept as an alias.
_masked_pool = masked_pool

__all__ = [
    "ISAB",
    "PMA",
    "SAB",
    "BucketBatchSampler",
    "DeepSetsConditional",
    "DeepSetsEquivariant",
    "DeepSetsInvariant",
    "GatedAttentionPooling",
    "MultiheadAttentionBlock",
    "PermutationEquivariantLayer",
    "PoolingState",
    "SetTransformer",
    "__version__",
    "attention",
    "collate",
    "functional",
    "load_pretrained",
    "masked_pool",
    "pack_sets",
    "pad_sets",
    "ragged",
    "segment_pool",
    "serialization",
    "streaming",
    "testing",
]
