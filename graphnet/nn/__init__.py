"""graphnet.nn: Module, Parameter, containers, layers, losses; `functional` and `init` as submodules."""
from . import functional, init, parallel, utils  # noqa: F401
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential  # noqa: F401
from .module import Module  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _layers
from .parallel import DataParallel  # noqa: F401
from .parameter import Parameter, UninitializedBuffer, UninitializedParameter  # noqa: F401
from . import parameter  # noqa: F401

__all__ = ["DataParallel", "Module", "ModuleDict", "ModuleList", "Parameter", "ParameterDict", "ParameterList",
           "Sequential", "UninitializedBuffer", "UninitializedParameter", "functional", "init", "parallel", "utils",
           *_layers]
