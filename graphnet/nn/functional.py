"""graphnet.nn.functional: PyTorch's torch.nn.functional, built from graphnet ops (so it runs eagerly, differentiates
and traces alike).

This module is the public API only: the implementations live in `graphnet.nn._functional`, one module per family
(activation, attention, conv, dropout, embedding, linear, loss, normalization, resample, shape).
Every name here is listed in `__all__`.
"""
from ._functional.activation import (
    elu,
    erf,
    erfc,
    gelu,
    glu,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    log_softmax,
    logsigmoid,
    mish,
    prelu,
    relu,
    relu6,
    relu_,
    selu,
    sigmoid,
    silu,
    softmax,
    softmin,
    softplus,
    softsign,
    tanh,
)
from ._functional.attention import multi_head_attention_forward, scaled_dot_product_attention
from ._functional.conv import (
    avg_pool1d,
    avg_pool2d,
    conv1d,
    conv2d,
    conv_transpose1d,
    conv_transpose2d,
    max_pool1d,
    max_pool2d,
)
from ._functional.dropout import dropout, dropout2d
from ._functional.embedding import embedding, one_hot
from ._functional.linear import bilinear, linear
from ._functional.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from ._functional.normalization import (
    batch_norm,
    group_norm,
    instance_norm,
    layer_norm,
    local_response_norm,
    normalize,
    rms_norm,
)
from ._functional.resample import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    interpolate,
    max_unpool2d,
    pixel_shuffle,
    pixel_unshuffle,
)
from ._functional.shape import flatten, pad

__all__ = [
    # activations
    "elu", "erf", "erfc", "gelu", "glu", "hardsigmoid", "hardswish", "hardtanh", "leaky_relu", "log_softmax",
    "logsigmoid", "mish", "prelu", "relu", "relu6", "relu_", "selu", "sigmoid", "silu", "softmax", "softmin",
    "softplus", "softsign", "tanh",
    # attention
    "multi_head_attention_forward", "scaled_dot_product_attention",
    # convolution and pooling
    "avg_pool1d", "avg_pool2d", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d",
    "max_pool1d", "max_pool2d",
    # adaptive pooling and resampling
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d", "interpolate",
    "max_unpool2d", "pixel_shuffle", "pixel_unshuffle",
    # dropout, embedding, linear
    "dropout", "dropout2d", "embedding", "one_hot", "bilinear", "linear",
    # losses
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "huber_loss", "kl_div", "l1_loss",
    "mse_loss", "nll_loss", "smooth_l1_loss",
    # normalisation and shape
    "batch_norm", "group_norm", "layer_norm", "normalize", "rms_norm", "flatten", "pad",
    "instance_norm", "local_response_norm",
]
