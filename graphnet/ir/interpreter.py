"""Run a Graph with each op's NumPy `impl`: the oracle every pass and code generator is tested against."""
import numpy as np


def _bind(graph, inputs):
    """Graph inputs from a list (in graph.inputs order) or a dict by input name or target."""
    params = graph.inputs
    if isinstance(inputs, dict):
        missing = [v.name for v in params if v.name not in inputs and v.producer.attrs["target"] not in inputs]
        if missing:
            raise KeyError(f"interpret: no value given for graph inputs {missing}")
        arrays = [inputs[v.name] if v.name in inputs else inputs[v.producer.attrs["target"]] for v in params]
    else:
        arrays = list(inputs)
        if len(arrays) != len(params):
            raise TypeError(f"interpret: the graph takes {len(params)} inputs ({[v.name for v in params]}), "
                            f"got {len(arrays)}")
    env = {}
    for v, a in zip(params, arrays):
        arr = np.asarray(a._host() if hasattr(a, "_host") else a)
        if tuple(arr.shape) != v.type.shape:
            raise ValueError(f"interpret: input %{v.name} expects shape {v.type.shape}, got {tuple(arr.shape)}")
        env[v] = arr.astype(v.type.dtype.np, copy=False)
    return env


def _run_node(node, env):
    if node.op == "constant":
        return [node.attrs["value"]]
    opdef = node.opdef
    result = opdef.impl(*(env[v] for v in node.inputs), **node.attrs)
    results = (result,) if opdef.n_outputs == 1 else result
    return [np.asarray(r, dtype=v.type.dtype.np) for r, v in zip(results, node.outputs)]


def interpret(graph, inputs, with_writebacks=False):
    """Output arrays of `graph` on `inputs` (a list or a dict by name); with_writebacks also returns the
    write-back arrays, in graph.writebacks order. Values are dropped after their last use."""
    env = _bind(graph, inputs)
    remaining = {}
    for node in graph.nodes:
        for v in node.inputs:
            remaining[v] = remaining.get(v, 0) + 1
    result = None
    for node in graph.nodes:
        if node.op == "input":
            continue
        if node.op == "output":
            result = [env[v] for v in node.inputs]
            break
        env.update(zip(node.outputs, _run_node(node, env)))
        for v in node.inputs:
            remaining[v] -= 1
            if remaining[v] == 0:
                del env[v]
    result = result or []
    n = len(graph.outputs)
    return (result[:n], result[n:]) if with_writebacks else result[:n]
