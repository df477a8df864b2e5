"""deepsets: permutation-invariant and permutation-equivariant networks on sets.

The four models of Zaheer et al. (2017) with exact masking, weighted sets and
sum / mean / max pooling. See https://arxiv.org/abs/1703.06114.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from . import attention, features, functional, ragged, serialization, streaming, testing
from .attention import (
    ISAB,
    PMA,
    SAB,
    GatedAttentionPooling,
    MultiheadAttentionBlock,
    SetTransformer,
)
from .features import FourierFeatures
from .functional import masked_pool, segment_pool
from .layers import PermutationEquivariantLayer
from .models import DeepSetsConditional, DeepSetsEquivariant, DeepSetsInvariant
from .ragged import BucketBatchSampler, collate, pack_sets, pad_sets
from .serialization import load_pretrained
from .streaming import PoolingState

try:  # one version source: the installed package's metadata (pyproject.toml)
    __version__ = _version("deepsets")
except _PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

#: The name the upstream ``deepsets-pytorch`` library gives
#: :func:`deepsets.functional.masked_pool`, kept as an alias.
_masked_pool = masked_pool

__all__ = [
    "ISAB",
    "PMA",
    "SAB",
    "BucketBatchSampler",
    "DeepSetsConditional",
    "DeepSetsEquivariant",
    "DeepSetsInvariant",
    "FourierFeatures",
    "GatedAttentionPooling",
    "MultiheadAttentionBlock",
    "PermutationEquivariantLayer",
    "PoolingState",
    "SetTransformer",
    "__version__",
    "attention",
    "collate",
    "features",
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
