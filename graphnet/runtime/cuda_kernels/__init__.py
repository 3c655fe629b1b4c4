"""The host side of codegen/templates/cuda_*.py: device buffers and kernel launches, one module per template.

codegen emits and compiles the kernels; these modules allocate outputs, launch the compiled kernels and handle their
error flags and host fallbacks, so runtime calls codegen and never the reverse.
"""
