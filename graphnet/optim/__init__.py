"""Optimizers (SGD, Adam, AdamW, RMSprop, Adagrad) and learning-rate schedulers, with PyTorch's algorithms and API."""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "SGD", "lr_scheduler"]
