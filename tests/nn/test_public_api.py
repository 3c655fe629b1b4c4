"""The public namespaces export their API and nothing else: graphnet, graphnet.nn and graphnet.nn.functional.

Every public name is listed in the module's `__all__` or is one of its own submodules (which the import system
binds); implementation helpers (np, bind, softplus_stable, ...) are not attributes. Where PyTorch is installed, a
name it does not have must be in an explicit allow-list of graphnet extras below, so a new leak fails here.
"""
import importlib
import types

import pytest

import graphnet
import graphnet.nn
import graphnet.nn.functional as F

NAMESPACES = [graphnet, graphnet.nn, F]

# torch.nn.functional names graphnet implements; each must stay reachable as graphnet.nn.functional.<name>.
TORCH_FUNCTIONAL = [
    "adaptive_avg_pool2d", "avg_pool1d", "avg_pool2d", "batch_norm", "bilinear", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "conv1d", "conv2d", "cross_entropy", "dropout", "elu", "embedding", "gelu",
    "group_norm", "hardsigmoid", "hardswish", "hardtanh", "huber_loss", "kl_div", "l1_loss", "layer_norm",
    "leaky_relu", "linear", "log_softmax", "logsigmoid", "max_pool1d", "max_pool2d", "mish", "mse_loss", "nll_loss",
    "normalize", "one_hot", "pad", "relu", "relu6", "relu_", "selu", "sigmoid", "silu", "smooth_l1_loss", "softmax",
    "softmin", "softplus", "tanh", "glu", "prelu", "softsign", "rms_norm", "scaled_dot_product_attention",
    "multi_head_attention_forward", "adaptive_avg_pool1d", "adaptive_max_pool1d", "adaptive_max_pool2d", "interpolate",
    "pixel_shuffle", "pixel_unshuffle", "dropout2d", "max_unpool2d", "conv_transpose1d", "conv_transpose2d",
    "instance_norm", "local_response_norm",
]

# Public names torch.nn.functional does not have (graphnet extras). Add a name here only on purpose.
FUNCTIONAL_EXTRAS = {
    "erf",  # the erf gelu's exact form uses (graphnet has no erf primitive; torch has torch.erf)
    "erfc",  # 1 - erf by a Chebyshev fit, the building block of erf and gelu
    "flatten",  # torch.flatten as a functional, for symmetry with nn.Flatten
}
NN_EXTRAS = {
    "LazyModuleMixin",  # torch has it as torch.nn.modules.lazy.LazyModuleMixin, not on torch.nn
}
TOP_EXTRAS = {
    "GraphBreak",  # raised when trace/compile meet data-dependent Python control flow
}

# Implementation helpers nn.functional once exposed; none may come back.
FUNCTIONAL_HELPERS = ["np", "numpy", "math", "warnings", "bind", "call", "dt", "fmt_shape", "uniform",
                      "softplus_stable", "one_hot_error", "Tensor", "no_grad", "legacy_reduction", "check_targets"]
# Modules graphnet / graphnet.nn bound only for internal use (import side effects, old file layout).
TOP_HELPERS = ["np", "api_convert", "api_elementwise", "api_indexing", "api_linalg", "api_movement", "api_random",
               "api_reduce", "interop", "FUNCTIONS"]
NN_HELPERS = ["np", "functional_conv", "functional_loss", "softplus_stable"]


def own_submodule(module, name):
    """Whether module.<name> is the module's own submodule (graphnet.nn for graphnet), bound by the import system."""
    obj = getattr(module, name)
    return isinstance(obj, types.ModuleType) and obj.__name__ == f"{module.__name__}.{name}"


def public(module):
    return [n for n in dir(module) if not n.startswith("_")]


def ids(module):
    return module.__name__


@pytest.mark.parametrize("module", NAMESPACES, ids=ids)
def test_every_public_name_is_in_all_or_a_submodule(module):
    stray = [n for n in public(module) if n not in module.__all__ and not own_submodule(module, n)]
    assert not stray, f"{module.__name__} exposes names missing from its __all__: {stray}"


@pytest.mark.parametrize("module", NAMESPACES, ids=ids)
def test_all_names_resolve_once(module):
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{module.__name__}.__all__ names what it does not define: {missing}"
    assert len(module.__all__) == len(set(module.__all__)), "duplicate names in __all__"
    assert all(not n.startswith("_") for n in module.__all__)


@pytest.mark.parametrize("module", NAMESPACES, ids=ids)
def test_all_lists_no_foreign_modules(module):
    foreign = [n for n in module.__all__
               if isinstance(getattr(module, n), types.ModuleType) and not own_submodule(module, n)]
    assert not foreign, f"{module.__name__}.__all__ lists modules that are not its subpackages: {foreign}"


@pytest.mark.parametrize("module, helpers", [(F, FUNCTIONAL_HELPERS), (graphnet.nn, NN_HELPERS),
                                             (graphnet, TOP_HELPERS)], ids=["functional", "nn", "graphnet"])
def test_helpers_are_not_exported(module, helpers):
    leaked = [n for n in helpers if hasattr(module, n)]
    assert not leaked, f"{module.__name__} exposes implementation helpers: {leaked}"


def test_functional_exports_only_functions():
    assert all(isinstance(getattr(F, n), types.FunctionType) for n in F.__all__)


def test_star_import_gives_exactly_all():
    scope = {}
    exec("from graphnet.nn.functional import *", scope)
    assert sorted(n for n in scope if n != "__builtins__") == sorted(F.__all__)


def test_implemented_torch_functional_names_are_reachable():
    unreachable = [n for n in TORCH_FUNCTIONAL if n not in F.__all__ or not callable(getattr(F, n, None))]
    assert not unreachable, unreachable


def test_helpers_live_in_the_private_modules():
    from graphnet.nn._functional.activation import softplus_stable
    from graphnet.nn._functional.loss import legacy_reduction

    assert legacy_reduction(None, False, "mean") == "none"
    assert softplus_stable(graphnet.tensor([0.0])).item() == pytest.approx(0.6931471805599453)


@pytest.mark.parametrize("ours, theirs, extras", [("graphnet.nn.functional", "torch.nn.functional", FUNCTIONAL_EXTRAS),
                                                  ("graphnet.nn", "torch.nn", NN_EXTRAS),
                                                  ("graphnet", "torch", TOP_EXTRAS)],
                         ids=["functional", "nn", "graphnet"])
def test_names_torch_lacks_are_allow_listed(ours, theirs, extras):
    pytest.importorskip("torch")
    module, reference = importlib.import_module(ours), importlib.import_module(theirs)
    unknown = {n for n in public(module) if not own_submodule(module, n)} - set(dir(reference))
    assert unknown <= extras, f"{ours} exposes names {theirs} lacks; add them to the extras or hide them: " \
                              f"{sorted(unknown - extras)}"
    assert extras <= unknown, f"stale extras (now in {theirs}, or gone): {sorted(extras - unknown)}"


def test_torch_functional_list_matches_torch():
    torch = pytest.importorskip("torch")
    assert not [n for n in TORCH_FUNCTIONAL if not hasattr(torch.nn.functional, n)]
    ours = {n for n in F.__all__ if hasattr(torch.nn.functional, n)}
    assert ours == set(TORCH_FUNCTIONAL), "keep TORCH_FUNCTIONAL in step with nn.functional's torch names"
