"""A compiled training step never trains on an out-of-range class index (losses, one_hot) or gather index: it raises
the eager error (PyTorch's "Target 7 is out of bounds.") before any parameter is updated, and trains on good input
afterwards. Labels that are a Program input are checked before the first kernel; labels computed inside the graph
(int32 ones cast to int64) by the check_targets kernel."""
import re

import pytest

import graphnet as torch
import graphnet.nn.functional as F
import graphnet.optim as optim
from graphnet.core.opdef import OpError

IGNORE = -100
LOSSES = {
    "cross_entropy": F.cross_entropy,
    "cross_entropy_weighted": lambda out, y: F.cross_entropy(out, y, weight=torch.tensor([1.0, 2.0, 0.5])),
    "cross_entropy_smoothed": lambda out, y: F.cross_entropy(out, y, label_smoothing=0.1),
    "nll_loss": lambda out, y: F.nll_loss(out.log_softmax(1), y),
}
BAD_TARGETS = [7, 3, -1, -5, 10 ** 8]


def _labels(bad, dtype):
    return torch.tensor([0, 1, bad, IGNORE, 2], dtype=dtype)


@pytest.mark.parametrize("bad", BAD_TARGETS)
@pytest.mark.parametrize("loss", LOSSES)
def test_a_bad_label_raises_the_eager_error_and_updates_nothing(bad_index_step, loss, bad):
    case = bad_index_step(LOSSES[loss])
    named = "nll_loss" if loss == "nll_loss" else "cross_entropy"  # the function the message names
    case.check(_labels(1, torch.int64), _labels(bad, torch.int64), IndexError,
               re.escape(f"Target {bad} is out of bounds. ({named}: input has 3 classes"))
    (program,) = case.compiled._last.programs
    assert program.input_checks.checks and program.driver is not None  # checked up front, still one driver call


@pytest.mark.parametrize("bad", [7, -5, 10 ** 8])
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_a_bad_label_computed_in_the_graph_is_caught_by_the_kernel(bad_index_step, loss, bad):
    case = bad_index_step(LOSSES[loss])
    case.check(_labels(1, torch.int32), _labels(bad, torch.int32), IndexError, re.escape(f"Target {bad} is out of"))
    (program,) = case.compiled._last.programs
    assert not program.input_checks.checks  # int32 labels are cast inside the graph: no Program input to check


@pytest.mark.parametrize("bad", [3, -1, -4, 10 ** 8])
def test_a_bad_gather_index_raises_the_eager_error_and_updates_nothing(bad_index_step, bad):
    """-1 too: PyTorch's gather takes no negative index."""
    case = bad_index_step(lambda out, i: torch.gather(out, 1, i.unsqueeze(1)).sum())
    case.check(torch.tensor([0, 1, 2, 2, 0]), torch.tensor([0, bad, 2, 1, 0]), OpError,
               re.escape(f"gather(): index {bad} is out of bounds for dimension 1 with size 3"))
    (program,) = case.compiled._last.programs
    assert program.input_checks.checks


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
@pytest.mark.parametrize("bad, message", [(3, "smaller than num_classes (got class 3, num_classes 3)"),
                                          (-1, "non-negative"), (10 ** 8, "smaller than num_classes")])
def test_a_bad_one_hot_class_raises_the_eager_error_and_updates_nothing(bad_index_step, bad, message, dtype):
    """A traced one_hot gave a silent all-zero row; int32 classes are cast in the graph (the kernel's check)."""
    case = bad_index_step(lambda out, y: (out * F.one_hot(y.long(), 3)).sum())
    case.check(torch.tensor([0, 1, 2, 2, 0], dtype=dtype), torch.tensor([0, 1, bad, 2, 0], dtype=dtype), RuntimeError,
               re.escape(f"Class values must be {message}"))


def test_parameters_the_labels_do_not_reach_are_not_updated_either():
    """The labels are checked before the first kernel, not where the loss reads them: the update of a second
    model, whose gradient does not depend on the cross-entropy, must not run either."""
    torch.manual_seed(0)
    first, second = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    opt = optim.SGD([*first.parameters(), *second.parameters()], lr=0.1)

    @torch.compile
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(first(x), y) + (second(x) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    x = torch.randn(5, 4)
    for _ in range(2):
        step(x, _labels(1, torch.int64))
    before = [p.detach().numpy().copy() for p in second.parameters()]
    with pytest.raises(IndexError, match=re.escape("Target 9 is out of bounds.")):
        step(x, _labels(9, torch.int64))
    assert all((a == p.detach().numpy()).all() for a, p in zip(before, second.parameters()))
