"""The small model the torch-format tests exchange, built from either framework's `nn` (same layer names)."""


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
