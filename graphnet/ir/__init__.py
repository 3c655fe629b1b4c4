"""The IR: Graph/Node/Value, the op families' rules (`ir.ops`, registered on import), the printer, verifier and
reference interpreter, the graph builder, and the backend-neutral kernel description fusion produces."""
from . import ops  # noqa: F401
