"""Module: the base of every layer and model; registers parameters, buffers and sub-modules by attribute."""
import itertools
from collections import OrderedDict, namedtuple

from ..core import dtype as dt
from ..frontend import tracer as _tracing
from ..frontend.autograd import no_grad
from ..frontend.creation import empty
from ..frontend.tensor import Tensor
from .parameter import Parameter, UninitializedParameter, is_lazy

_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
_hook_ids = itertools.count()


class RemovableHandle:
    """Returned by register_*hook; `remove()` takes the hook out of its dict."""

    def __init__(self, hooks_dict):
        self.hooks_dict, self.id = hooks_dict, next(_hook_ids)

    def remove(self):
        self.hooks_dict.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _typename(value):
    return value.type() if isinstance(value, Tensor) else type(value).__name__


def _addindent(text, spaces):
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


class Module:
    """Base class for all neural network modules; subclasses call super().__init__() and define forward()."""

    training: bool
    _version = 1

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments {args} {kwargs}")
        for name, value in (("training", True), ("_parameters", OrderedDict()), ("_buffers", OrderedDict()),
                            ("_non_persistent_buffers_set", set()), ("_modules", OrderedDict()),
                            ("_forward_hooks", OrderedDict()), ("_forward_pre_hooks", OrderedDict())):
            object.__setattr__(self, name, value)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        tracer = _tracing.active()
        if tracer is not None:
            tracer.touch_module(self)
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    # ---- hooks ----------------------------------------------------------------------------------------------------
    def _add_hook(self, hooks, hook, prepend):
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_pre_hook(self, hook, *, prepend=False):
        """hook(module, args) -> None or new args, run before forward()."""
        return self._add_hook(self._forward_pre_hooks, hook, prepend)

    def register_forward_hook(self, hook, *, prepend=False):
        """hook(module, args, output) -> None or a new output, run after forward()."""
        return self._add_hook(self._forward_hooks, hook, prepend)

    # ---- registration ---------------------------------------------------------------------------------------------
    def _check_name(self, kind, name, store):
        if store not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
        if "." in name:
            raise KeyError(f"{kind} name can't contain \".\", got: {name}")
        if name == "":
            raise KeyError(f"{kind} name can't be empty string \"\"")
        if hasattr(self, name) and name not in self.__dict__[store]:
            raise KeyError(f"attribute '{name}' already exists")

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor that is state but not a parameter (e.g. BatchNorm's running_mean); saved in state_dict if
        persistent."""
        self._check_name("buffer", name, "_buffers")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{_typename(tensor)}' object to buffer '{name}' (graphnet Tensor or None "
                            "required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def register_parameter(self, name, param):
        self._check_name("parameter", name, "_parameters")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{_typename(param)}' object to parameter '{name}' "
                            "(graphnet.nn.Parameter or None required)")
        if param is not None and not isinstance(param, UninitializedParameter) and param.grad_fn is not None:
            raise ValueError(f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must be created "
                             f"explicitly. To express '{name}' as a function of another Tensor, compute the value in "
                             "the forward() method.")
        self._parameters[name] = param

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_typename(module)} is not a Module subclass")
        self._check_name("module", name, "_modules")
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target):
        mod = self
        for item in target.split(".") if target else []:
            if item not in mod._modules:
                raise AttributeError(f"{mod._get_name()} has no attribute `{item}`")
            mod = mod._modules[item]
        return mod

    def get_parameter(self, target):
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._parameters:
            raise AttributeError(f"`{name}` is not an nn.Parameter")
        return mod._parameters[name]

    def __getattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            d = self.__dict__.get(store)
            if d is not None and name in d:
                return d[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._discard(name, "_buffers", "_modules")
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{_typename(value)}' as parameter '{name}' (graphnet.nn.Parameter or "
                                "None expected)")
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            if self.__dict__.get("_modules") is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._discard(name, "_parameters", "_buffers")
            self._modules[name] = value
        elif name in self.__dict__.get("_modules", ()):
            if value is not None:
                raise TypeError(f"cannot assign '{_typename(value)}' as child module '{name}' (graphnet.nn.Module or "
                                "None expected)")
            self._modules[name] = value
        elif name in self.__dict__.get("_buffers", ()):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{_typename(value)}' as buffer '{name}' (graphnet.Tensor or None "
                                "expected)")
            _refuse_traced_state(self, name, value, "buffer", f"update it in place (self.{name}.copy_(...))")
            self._buffers[name] = value
        else:
            _refuse_traced_state(self, name, value, "plain attribute",
                                 f"register_buffer('{name}', ...) and update it in place")
            object.__setattr__(self, name, value)

    def _discard(self, name, *stores):
        self.__dict__.pop(name, None)
        for store in stores:
            self.__dict__[store].pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def __delattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__[store]:
                del self.__dict__[store][name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    # ---- traversal (iterative) --------------------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """Pre-order walk yielding (dotted name, module); a module reachable twice is yielded once."""
        memo = set() if memo is None else memo
        stack = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            if remove_duplicate:
                if id(mod) in memo:
                    continue
                memo.add(id(mod))
            yield name, mod
            children = [(name + ("." if name else "") + k, m) for k, m in mod._modules.items() if m is not None]
            stack.extend(reversed(children))

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, store, prefix, recurse, remove_duplicate=True):
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        memo = set()
        for mod_prefix, mod in mods:
            for k, v in mod.__dict__[store].items():
                if v is None or (remove_duplicate and id(v) in memo):
                    continue
                memo.add(id(v))
                yield mod_prefix + ("." if mod_prefix else "") + k, v

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(name, Parameter) pairs like '0.weight'; a parameter shared by two modules is yielded once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ---- modes and in-place transforms ------------------------------------------------------------------------------
    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = p.grad.detach()
                p.grad.zero_()

    def apply(self, fn):
        """Call fn on every sub-module (children first, as PyTorch does) and on self."""
        stack = [(self, False)]
        while stack:
            mod, children_done = stack.pop()
            if children_done:
                fn(mod)
                continue
            stack.append((mod, True))
            stack.extend((child, False) for child in reversed(list(mod.children())))
        return self

    def _apply(self, fn):
        """Replace every parameter's data (keeping the Parameter object) and every buffer by fn(tensor)."""
        with no_grad():
            for m in self.modules():
                for p in m._parameters.values():
                    if p is not None and is_lazy(p):
                        _retarget_lazy(p, fn)
                    elif p is not None:
                        p.data = fn(p)
                        if p.grad is not None:
                            p.grad = fn(p.grad)
                for k, b in m._buffers.items():
                    if b is not None:
                        m._buffers[k] = _retarget_lazy(b, fn) if is_lazy(b) else fn(b)
        return self

    def to(self, *args, **kwargs):
        """to(device), to(dtype), to(device, dtype), to(tensor): floating-point tensors take the dtype."""
        from ..frontend.api_convert import _parse_to

        dev, dtype = _parse_to(args, dict(kwargs))
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got desired dtype={dtype!r}")

        def convert(t):
            return t.to(dev, dtype if t.is_floating_point() else None) if dtype is not None else t.to(dev) \
                if dev is not None else t

        return self._apply(convert)

    def cpu(self):
        return self._apply(lambda t: t.cpu())

    def share_memory(self):
        """Move every parameter and buffer into shared memory (Tensor.share_memory_), for Hogwild processes."""
        for t in [*self.parameters(), *self.buffers()]:
            t.share_memory_()
        return self

    def cuda(self, device=None):
        return self._apply(lambda t: t.cuda(device))

    def type(self, dst_type):
        return self._apply(lambda t: t.type(dst_type))

    def float(self):  # noqa: A003
        return self._apply(lambda t: t.to(dt.float32) if t.is_floating_point() else t)

    def double(self):
        return self._apply(lambda t: t.to(dt.float64) if t.is_floating_point() else t)

    def half(self):
        return self._apply(lambda t: t.to(dt.float16) if t.is_floating_point() else t)

    # ---- state dict -------------------------------------------------------------------------------------------------
    def _state_items(self, mod):
        yield from ((k, v) for k, v in mod._parameters.items() if v is not None)
        yield from ((k, v) for k, v in mod._buffers.items()
                    if v is not None and k not in mod._non_persistent_buffers_set)

    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """An ordered name -> tensor map of parameters and persistent buffers (detached, sharing storage)."""
        out = OrderedDict() if destination is None else destination
        for mod_prefix, mod in self.named_modules(prefix=prefix.rstrip("."), remove_duplicate=False):
            for k, v in self._state_items(mod):
                out[mod_prefix + ("." if mod_prefix else "") + k] = v if keep_vars else v.detach()
        return out

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy values from `state_dict`; strict=True raises on missing/unexpected keys and shape mismatches."""
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        expected, errors = set(), []
        for mod_prefix, mod in self.named_modules(remove_duplicate=False):
            for k, v in list(self._state_items(mod)):
                key = mod_prefix + ("." if mod_prefix else "") + k
                expected.add(key)
                if key in state_dict:
                    _load_one(mod, k, key, v, state_dict[key], errors)
        missing = [k for k in self.state_dict(keep_vars=True) if k not in state_dict]
        unexpected = [k for k in state_dict.keys() if k not in expected]
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: {}. ".format(_quoted(unexpected)))
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: {}. ".format(_quoted(missing)))
        if errors:
            raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(self._get_name(),
                                                                                   "\n\t".join(errors)))
        return _IncompatibleKeys(missing, unexpected)

    # ---- printing ---------------------------------------------------------------------------------------------------
    def _get_name(self):
        return type(self).__name__

    def extra_repr(self):
        return ""

    def _repr_with(self, child_reprs):
        extra_lines = self.extra_repr().split("\n") if self.extra_repr() else []
        child_lines = [f"({k}): " + _addindent(child_reprs[id(m)], 2) for k, m in self._modules.items()
                       if m is not None] + [f"({k}): None" for k, m in self._modules.items() if m is None]
        main = self._get_name() + "("
        lines = extra_lines + child_lines
        if len(extra_lines) == 1 and not child_lines:
            main += extra_lines[0]
        elif lines:
            main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __repr__(self):
        """Children are printed before their parents by walking the pre-order list backwards (no recursion, except
        into a child class that overrides __repr__ itself)."""
        reprs = {}
        for _, m in reversed(list(self.named_modules(remove_duplicate=False))):
            own = m is self or type(m).__repr__ is Module.__repr__
            reprs[id(m)] = m._repr_with(reprs) if own else repr(m)
        return reprs[id(self)]

    def __getstate__(self):
        return self.__dict__.copy()

    def __setstate__(self, state):
        self.__dict__.update(state)


def _refuse_traced_state(module, name, value, kind, remedy):
    """Storing a traced tensor on a module would leak it past the trace, and a compiled program writes back only
    what is updated in place: break the graph so this forward runs eagerly (correct, with a warning)."""
    if isinstance(value, Tensor) and value._proxy is not None:
        raise _tracing.GraphBreak(f"forward assigns a traced tensor to {type(module).__name__}.{name}, a {kind}, at "
                                  f"{_tracing.user_location()}: a compiled program carries module state only through "
                                  f"in-place updates, so this runs eagerly; to compile, {remedy}")


def _retarget_lazy(t, fn):
    """A lazy tensor has no data for `fn`: it takes the dtype and device `fn` gives an empty one (as in torch), so
    `LazyLinear(3).double()` materialises in float64."""
    probe = fn(empty(0, dtype=t._dtype, device=t._device))
    t._dtype, t._device = probe._dtype, probe._device
    return t


def _quoted(keys):
    return ", ".join(f'"{k}"' for k in keys)


def _load_one(mod, name, key, param, value, errors):
    """Copy one checkpoint tensor into a parameter/buffer, materialising lazy parameters first."""
    if not isinstance(value, Tensor):
        errors.append(f'While copying the parameter named "{key}", expected graphnet.Tensor or Tensor-like object '
                      f"from checkpoint but received {type(value)}")
        return
    if is_lazy(param):
        param.materialize(tuple(value.shape))
    elif tuple(value.shape) != tuple(param.shape):
        errors.append(f"size mismatch for {key}: copying a param with shape {value.shape} from checkpoint, the shape "
                      f"in current model is {param.shape}.")
        return
    with no_grad():
        param.copy_(value)
