"""nn.functional linear maps: linear and bilinear, with errors that name both shapes."""
from ...ir.ops.util import fmt_shape


def linear(input, weight, bias=None):
    """input @ weight.T + bias, with a clear error when the feature sizes disagree."""
    if input.shape[-1:] != weight.shape[-1:]:
        raise RuntimeError(f"linear: input has {input.shape[-1] if input.ndim else 0} features but weight expects "
                           f"{weight.shape[-1]} (input shape {fmt_shape(input.shape)}, weight shape "
                           f"{fmt_shape(weight.shape)})")
    out = input @ weight.t()
    return out if bias is None else out + bias


def bilinear(input1, input2, weight, bias=None):
    """y_k = x1^T W_k x2 + b_k for weight of shape (out, in1, in2)."""
    if input1.shape[-1] != weight.shape[1] or input2.shape[-1] != weight.shape[2]:
        raise RuntimeError(f"bilinear: input1 has {input1.shape[-1]} and input2 {input2.shape[-1]} features but weight "
                           f"has shape {fmt_shape(weight.shape)} (expects (out, in1, in2))")
    left = (input1.unsqueeze(-2).unsqueeze(-2) @ weight).squeeze(-2)
    out = (left * input2.unsqueeze(-2)).sum(-1)
    return out if bias is None else out + bias

