r"""Attention on sets: the Set Transformer blocks (MAB, SAB, ISAB, PMA) and gated attention
pooling, with the input forms and guarantees of the Deep Sets models.

Every block takes the same three input forms as :func:`~deepsets.functional.masked_pool`:

* padded ``x (B, M, D)`` with an optional ``mask (B, M)``: bool, or float weights
  ``>= 0`` meaning multiplicities;
* packed sets as a jagged nested tensor ``(B, j, D)`` (with jagged ``(B, j)`` weights);
* packed rows ``x (N, D)`` with CSR ``offsets`` ``(S + 1,)`` or a PyG-style row
  ``index`` ``(N,)`` (and ``(N,)`` weights as ``mask``).

Guarantees, tested for every block:

* **exact masking** — padding (weight 0) neither gives nor receives attention, whatever it
  holds (NaN, ±inf): it is replaced by 0 before any matmul and its logits by :math:`-\infty`;
  equivariant outputs hold exactly 0 there;
* **weights are multiplicities** — :math:`\log w_j` is added to the logits over the keys, so
  a weighted set and the multiset with every element repeated :math:`w_j` times give the
  same outputs;
* **empty sets** are finite with finite gradients: attention over no element is 0 (the
  empty sum), so PMA of an empty set is its seeds passed through the block with a zero
  attention term, :math:`\mathrm{LN}(H + \mathrm{rFF}(H)),\ H = \mathrm{LN}(S W^q)` — a
  learned constant, as Deep Sets pool an empty set to 0 before ρ;
* **packed sets are never padded to the largest set**. PMA's and ISAB's attention is
  set-to-few (``k`` seeds or ``m`` inducing points attend over each set's rows, then each
  row attends over its set's ``m`` outputs). PMA runs a segment softmax over the packed
  rows, ``O(N_total · k)``, with no host sync. ISAB lays the rows out in tiles of 32 rows
  of one set (at most 31 empty slots per set, one host sync for the number of tiles), so
  both of its attentions are dense batched matmuls, with one softmax per set combined
  across its tiles. SAB is all-pairs: packed sets are grouped by size (within a factor of
  2, one host sync for the sizes) and each group is padded to its own largest set, so a
  set of ``n`` rows costs fewer than :math:`4n^2` attention logits per head, not
  :math:`M_{max}^2`.

Conventions of the authors' code (juho-lee/set_transformer), whose numbers the paper
reports: the residual adds the projected queries :math:`X W^q`, logits are scaled by
:math:`1/\sqrt{d}` with :math:`d` the block's width, heads split the width into contiguous
slices, the row-wise feed-forward is :math:`\mathrm{rFF}(H) = \mathrm{ReLU}(H W^o + b^o)`, and
LayerNorm is optional (``layer_norm``, the code's ``ln``).

Reference:
    Lee et al., *Set Transformer: A Framework for Attention-based Permutation-Invariant
    Neural Networks*, ICML 2019, https://arxiv.org/abs/1810.00825;
    Ilse et al., *Attention-based Deep Multiple Instance Learning*, ICML 2018,
    https://arxiv.org/abs/1802.04712
"""

from .blocks import ISAB, PMA, SAB, MultiheadAttentionBlock
from .gated import GatedAttentionPooling
from .set_transformer import SetTransformer

__all__ = [
    "ISAB",
    "PMA",
    "SAB",
    "GatedAttentionPooling",
    "MultiheadAttentionBlock",
    "SetTransformer",
]
