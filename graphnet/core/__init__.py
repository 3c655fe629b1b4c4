"""The bottom layer every other one builds on: dtypes, devices, tensor types, the `OpDef` registry and `bind`.

It imports nothing else from graphnet; the layers above register with it (ops with `opdef.register`, the frontend's
eager interpreter with `bind.register_eager`).
"""
