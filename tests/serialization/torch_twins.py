"""What the torch-format tests share: the small model they exchange, built from either framework's `nn` (same layer
names), a malicious object to pickle and hand-built tensor pickles."""
import os
import pickle


def small(nn):
    """Linear, Conv2d, BatchNorm2d, LSTM and MultiheadAttention from `nn` (torch.nn or graphnet.nn): the layers
    whose parameter and buffer names graphnet must match."""

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.bn = nn.BatchNorm2d(2)
            self.lstm = nn.LSTM(4, 3, batch_first=True)
            self.attn = nn.MultiheadAttention(4, 2, batch_first=True)
            self.fc = nn.Linear(3, 2)

    return Small()


class System:
    """Pickles as os.system(command): what a malicious checkpoint does."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _op(value):
    """The protocol-2 opcodes that push `value` (a pickle of it without its PROTO and STOP)."""
    return pickle.dumps(value, 2)[2:-1]


_NO_VIEW = object()


def tensor_pickle(storage_type, numel, size, stride, offset=0, location="cpu", key="0", view=_NO_VIEW):
    """The pickle of one tensor as torch writes it (protocol 2): a zip file's data.pkl, or with `view` (None or
    (view key, offset, numel)) the object pickle of a legacy file, whose persistent ids end with it."""
    pid = _op("storage") + b"ctorch\n" + storage_type.encode() + b"\n" + _op(key) + _op(location) + _op(numel)
    if view is not _NO_VIEW:
        pid += _op(view)
    return (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((" + pid + b"tQ" + _op(offset) + _op(tuple(size))
            + _op(tuple(stride)) + b"\x89ccollections\nOrderedDict\n)RtR.")
