"""Character-level text: the tiny-Shakespeare corpus shipped with graphnet, its fixed split, and a vocabulary."""
import gzip
import hashlib
from pathlib import Path

import numpy as np

from ..frontend.creation import from_numpy

PACKAGED_SHAKESPEARE = Path(__file__).resolve().parent / "tinyshakespeare" / "input.txt.gz"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


class CharVocab:
    """Characters <-> ids by sorted order (the shared split's encoding)."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, text):
        try:
            return np.fromiter((self.index[c] for c in text), np.int64, len(text))
        except KeyError as e:
            raise ValueError(f"CharVocab.encode: character {e.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids):
        return "".join(self.chars[int(i)] for i in ids)


def read_text(path=None):
    """The corpus text (the packaged tiny Shakespeare by default, checked against its sha256; `.gz` or plain)."""
    path = Path(path) if path is not None else PACKAGED_SHAKESPEARE
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if path == PACKAGED_SHAKESPEARE and hashlib.sha256(raw).hexdigest() != SHAKESPEARE_SHA256:
        raise RuntimeError(f"{path}: the packaged text does not match its sha256; reinstall graphnet")
    return raw.decode("utf-8")


def shakespeare_split(path=None, train_fraction=0.9):
    """(train ids, validation ids, vocab): int64 tensors of the first 90% / last 10% of the characters."""
    text = read_text(path)
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    n = int(train_fraction * len(ids))
    return from_numpy(ids[:n].copy()), from_numpy(ids[n:].copy()), vocab
