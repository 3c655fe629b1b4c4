"""graphnet.onnx: export a model's traced graph to ONNX (torch.onnx.export's signature), checked by onnx.checker."""
from .export import UnsupportedOperatorError, export, is_in_onnx_export

__all__ = ["export", "UnsupportedOperatorError", "is_in_onnx_export"]
