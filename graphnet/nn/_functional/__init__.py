"""The implementation of graphnet.nn.functional, one module per family.

`graphnet/nn/functional.py` is the public face: it imports exactly the public functions from these modules and
lists them in its `__all__`. Helpers that other modules share (softplus_stable, legacy_reduction, ...) are imported
from here, never through `nn.functional`.

Families: `activation` (ReLU family, ELU/SELU, GELU and erf/erfc, sigmoid/tanh, softplus, softmax family),
`conv` (convolution and pooling), `dropout`, `embedding` (embedding, one_hot), `linear` (linear, bilinear),
`loss`, `normalization` (batch/layer/group norm, normalize), `shape` (pad, flatten); `common` holds what they share.
"""
