"""Recurrent layers RNN, LSTM, GRU and their cells, with PyTorch's parameters, gate order, shapes and errors.

Each cell's math is one step function of the input projection gi = x W_ih^T + b_ih and the previous state. A cell
module projects its one input and takes one step. A layer projects the whole sequence of each direction in one GEMM,
then runs the recurrence as one `rnn_scan` op (eagerly and in a compiled Program, one loop over the timesteps, and
one for its backward-through-time); an LSTM with projections (proj_size) loops over the step function instead.
"""
import math
import numbers
import warnings

from ...core.bind import bind
from ...frontend.api_movement import cat, stack
from ...frontend.creation import empty, zeros
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter


def rnn_cell(gi, h, w_hh, b_hh, nonlinearity="tanh"):
    """Elman step h' = act(gi + h W_hh^T + b_hh); returns (output, state), both h'."""
    pre = gi + F.linear(h, w_hh, b_hh)
    h = F.tanh(pre) if nonlinearity == "tanh" else F.relu(pre)
    return h, h


def lstm_cell(gi, state, w_hh, b_hh, w_hr=None):
    """LSTM step with PyTorch's gate order (i, f, g, o); w_hr projects h (proj_size). Returns (h', (h', c'))."""
    h, c = state
    i, f, g, o = (gi + F.linear(h, w_hh, b_hh)).chunk(4, -1)
    c = F.sigmoid(f) * c + F.sigmoid(i) * F.tanh(g)
    h = F.sigmoid(o) * F.tanh(c)
    if w_hr is not None:
        h = F.linear(h, w_hr)
    return h, (h, c)


def gru_cell(gi, h, w_hh, b_hh):
    """GRU step, gates (r, z, n) with n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); returns (h', h')."""
    gi_r, gi_z, gi_n = gi.chunk(3, -1)
    gh_r, gh_z, gh_n = F.linear(h, w_hh, b_hh).chunk(3, -1)
    r = F.sigmoid(gi_r + gh_r)
    z = F.sigmoid(gi_z + gh_z)
    n = F.tanh(gi_n + r * gh_n)
    h = n + z * (h - n)
    return h, h


def _check_type(name, value, kind):
    if not isinstance(value, kind):
        raise TypeError(f"{name} should be of type {kind.__name__}, got: {type(value).__name__}")


def _per_index(hx):
    """Split a stacked state (a tensor, or LSTM's (h, c)) along dim 0 into one state per layer and direction."""
    if isinstance(hx, tuple):
        return list(zip(*(t.unbind(0) for t in hx)))
    return list(hx.unbind(0))


def _stacked(states):
    """Inverse of _per_index: stack the final states of every layer and direction."""
    if isinstance(states[0], tuple):
        return tuple(stack(list(s)) for s in zip(*states))
    return stack(states)


class RNNBase(Module):
    """What RNN, LSTM and GRU share: argument checks, the parameters per layer and direction, the layer loop."""

    _gates = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
    _rank_error = "{}: Expected input to be 2D or 3D, got {}D instead"

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1):
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an element "
                             "being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          stacklevel=3)
        _check_type("bias", bias, bool)
        _check_type("batch_first", batch_first, bool)
        _check_type("input_size", input_size, int)
        if input_size <= 0:
            raise ValueError("input_size must be greater than zero")
        _check_type("hidden_size", hidden_size, int)
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        gate_size = self._gates[mode] * hidden_size
        real_hidden = proj_size or hidden_size
        directions = 2 if bidirectional else 1
        self._flat_weights_names, self._all_weights = [], []
        for layer in range(num_layers):
            for direction in range(directions):
                layer_input = input_size if layer == 0 else real_hidden * directions
                shapes = {"weight_ih": (gate_size, layer_input), "weight_hh": (gate_size, real_hidden)}
                if bias:
                    shapes.update(bias_ih=(gate_size,), bias_hh=(gate_size,))
                if proj_size:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                suffix = "_reverse" if direction else ""
                names = []
                for kind, shape in shapes.items():
                    names.append(f"{kind}_l{layer}{suffix}")
                    setattr(self, names[-1], Parameter(empty(*shape, device=device, dtype=dtype)))
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    @property
    def _flat_weights(self):
        """The parameters in PyTorch's flat order (always the current ones, so assigning a weight needs no sync)."""
        return [getattr(self, name, None) for name in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self):
        """A no-op: PyTorch packs the weights for cuDNN here; graphnet has nothing to pack."""

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0), ("bidirectional", False)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s

    # ---- argument checks, worded as PyTorch's -----------------------------------------------------------------
    def _expected_hidden(self, input, size):
        batch = input.size(0) if self.batch_first else input.size(1)
        return ((2 if self.bidirectional else 1) * self.num_layers, batch, size)

    def _zeros(self, input, size):
        return zeros(*self._expected_hidden(input, size), dtype=input.dtype, device=input.device)

    def check_input(self, input):
        weight = self._flat_weights[0]
        if input.dtype != weight.dtype:
            raise ValueError(f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight.dtype}). Convert "
                             f"input: input.to({weight.dtype}), or convert model: model.to({input.dtype})")
        if input.size(-1) != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got "
                               f"{input.size(-1)}")

    @staticmethod
    def check_hidden_size(hx, expected, msg="Expected hidden size {}, got {}"):
        if tuple(hx.shape) != expected:
            raise RuntimeError(msg.format(expected, list(hx.shape)))

    def _initial_state(self, input, hx, batched):
        """The (L*D, N, H) initial state: hx checked and batched, or zeros."""
        if hx is not None:
            if batched and hx.dim() != 3:
                raise RuntimeError(f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor")
            if not batched:
                if hx.dim() != 2:
                    raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got {hx.dim()}-D tensor")
                hx = hx.unsqueeze(1)
        else:
            hx = self._zeros(input, self.hidden_size)
        self.check_input(input)
        self.check_hidden_size(hx, self._expected_hidden(input, self.hidden_size))
        return hx

    # ---- the computation ----------------------------------------------------------------------------------------
    def _step(self, gi, state, weights):
        """One timestep of one layer and direction: (output, new state)."""
        raise NotImplementedError

    def _direction(self, x, state, weights, reverse):
        """Run one layer in one direction over x (T, N, I): one GEMM for every timestep's input projection, then the
        recurrence. Returns the (T, N, H) outputs in time order and the final state."""
        steps, batch, features = x.shape
        gi = F.linear(x.reshape(steps * batch, features), weights["weight_ih"], weights.get("bias_ih"))
        gi = gi.reshape(steps, batch, gi.shape[-1])
        if not self.proj_size:
            return self._scan(gi, state, weights, reverse)
        outputs = [None] * steps
        for t in (reversed(range(steps)) if reverse else range(steps)):
            outputs[t], state = self._step(gi[t], state, weights)
        return stack(outputs), state

    def _scan(self, gi, state, weights, reverse):
        """The recurrence of one layer and direction as one rnn_scan op over the state [h] or [h, c]."""
        w_hh, hidden = weights["weight_hh"], self.hidden_size
        b_hh = weights.get("bias_hh")
        if b_hh is None:
            b_hh = zeros(w_hh.shape[0], dtype=w_hh.dtype, device=w_hh.device)
        states, _ = bind("rnn_scan", gi, cat(state, 1) if isinstance(state, tuple) else state, w_hh, b_hh,
                         mode=self.mode, reverse=reverse)
        final = states[0] if reverse else states[gi.shape[0] - 1]
        if isinstance(state, tuple):
            return states[:, :, :hidden], (final[:, :hidden], final[:, hidden:])
        return states, final

    def _layers(self, x, hx):
        """Every layer and direction over the time-major x, dropout between layers; (output, final states)."""
        states, finals = _per_index(hx), []
        directions = 2 if self.bidirectional else 1
        for layer in range(self.num_layers):
            if layer and self.training and self.dropout:
                x = F.dropout(x, self.dropout, True)
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                weights = {name.split("_l")[0]: getattr(self, name) for name in self._all_weights[k]}
                out, final = self._direction(x, states[k], weights, reverse=direction == 1)
                outputs.append(out)
                finals.append(final)
            x = outputs[0] if directions == 1 else cat(outputs, 2)
        return x, _stacked(finals)

    def forward(self, input, hx=None):
        if input.dim() not in (2, 3):
            raise ValueError(self._rank_error.format(type(self).__name__, input.dim()))
        batched = input.dim() == 3
        batch_dim = 0 if self.batch_first else 1
        if not batched:
            input = input.unsqueeze(batch_dim)  # noqa: A001 (PyTorch's argument name)
        hx = self._initial_state(input, hx, batched)
        output, h_n = self._layers(input.transpose(0, 1) if self.batch_first else input, hx)
        if self.batch_first:
            output = output.transpose(0, 1)
        if not batched:
            output = output.squeeze(batch_dim)
            h_n = tuple(h.squeeze(1) for h in h_n) if isinstance(h_n, tuple) else h_n.squeeze(1)
        return output, h_n


class RNN(RNNBase):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or ReLU), stacked and optionally
    bidirectional. Positional arguments as PyTorch's: (input_size, hidden_size, num_layers, nonlinearity, ...)."""

    _rank_error = "{}: Expected input to be 2D or 3D, got {}D tensor instead"

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            nonlinearity, args = args[3], args[:3] + args[4:]
        else:
            nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", *args, **kwargs)
        self.nonlinearity = nonlinearity

    def _step(self, gi, state, weights):
        return rnn_cell(gi, state, weights["weight_hh"], weights.get("bias_hh"), self.nonlinearity)


class LSTM(RNNBase):
    """Long short-term memory, gates (i, f, g, o); forward(input, (h_0, c_0)) returns (output, (h_n, c_n)).
    proj_size > 0 projects each h by weight_hr (LSTMs with projections)."""

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)

    def _initial_state(self, input, hx, batched):
        real_hidden = self.proj_size or self.hidden_size
        if hx is None:
            hx = (self._zeros(input, real_hidden), self._zeros(input, self.hidden_size))
        elif batched and (hx[0].dim() != 3 or hx[1].dim() != 3):
            raise RuntimeError("For batched 3-D input, hx and cx should also be 3-D but got "
                               f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors")
        elif not batched:
            if hx[0].dim() != 2 or hx[1].dim() != 2:
                raise RuntimeError("For unbatched 2-D input, hx and cx should also be 2-D but got "
                                   f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors")
            hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
        self.check_input(input)
        self.check_hidden_size(hx[0], self._expected_hidden(input, real_hidden), "Expected hidden[0] size {}, got {}")
        self.check_hidden_size(hx[1], self._expected_hidden(input, self.hidden_size),
                               "Expected hidden[1] size {}, got {}")
        return tuple(hx)

    def _step(self, gi, state, weights):
        return lstm_cell(gi, state, weights["weight_hh"], weights.get("bias_hh"), weights.get("weight_hr"))


class GRU(RNNBase):
    """Gated recurrent unit, gates (r, z, n): n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1-z) n + z h."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)

    def _step(self, gi, state, weights):
        return gru_cell(gi, state, weights["weight_hh"], weights.get("bias_hh"))


# ---- cells -------------------------------------------------------------------------------------------------------
class RNNCellBase(Module):
    """One timestep: weight_ih (chunks*H, I), weight_hh (chunks*H, H), optional bias_ih, bias_hh; 1-d input allowed."""

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_ih = Parameter(empty(num_chunks * hidden_size, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(empty(num_chunks * hidden_size, hidden_size, device=device, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(empty(num_chunks * hidden_size, device=device, dtype=dtype))
            self.bias_hh = Parameter(empty(num_chunks * hidden_size, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _cell(self, gi, state):
        """The step function on the projected input: (output, state)."""
        raise NotImplementedError

    def forward(self, input, hx=None):
        """Check and batch the arguments as PyTorch does, project the input, take one step."""
        name = type(self).__name__
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        states = hx if isinstance(hx, tuple) else (hx,)
        for i, h in enumerate(states if hx is not None else ()):
            if h.dim() not in (1, 2):
                what = f"hx[{i}]" if isinstance(hx, tuple) else "hidden"
                raise ValueError(f"{name}: Expected {what} to be 1D or 2D, got {h.dim()}D instead")
        batched = input.dim() == 2
        if not batched:
            input = input.unsqueeze(0)  # noqa: A001 (PyTorch's argument name)
        if hx is None:
            states = (zeros(input.size(0), self.hidden_size, dtype=input.dtype, device=input.device),) * self._states
        elif not batched:
            states = tuple(h.unsqueeze(0) for h in states)
        if input.size(1) != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.size(1)} expected {self.input_size}")
        for i, h in enumerate(states):
            if input.size(0) != h.size(0):
                raise RuntimeError(f"Input batch size {input.size(0)} doesn't match hidden{i} batch size {h.size(0)}")
            if h.size(1) != self.hidden_size:
                raise RuntimeError(f"hidden{i} has inconsistent hidden_size: got {h.size(1)}, expected "
                                   f"{self.hidden_size}")
        _, state = self._cell(F.linear(input, self.weight_ih, self.bias_ih), states if self._states > 1 else states[0])
        if not batched:
            state = tuple(s.squeeze(0) for s in state) if isinstance(state, tuple) else state.squeeze(0)
        return state


class RNNCell(RNNCellBase):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh), or ReLU."""

    _states = 1

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def _cell(self, gi, state):
        if self.nonlinearity not in ("tanh", "relu"):
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        return rnn_cell(gi, state, self.weight_hh, self.bias_hh, self.nonlinearity)


class LSTMCell(RNNCellBase):
    """One LSTM step: forward(input, (h, c)) returns (h', c')."""

    _states = 2

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def _cell(self, gi, state):
        return lstm_cell(gi, state, self.weight_hh, self.bias_hh)


class GRUCell(RNNCellBase):
    """One GRU step: forward(input, h) returns h'."""

    _states = 1

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def _cell(self, gi, state):
        return gru_cell(gi, state, self.weight_hh, self.bias_hh)
