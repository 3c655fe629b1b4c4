"""L-BFGS: quasi-Newton steps from a limited history of (gradient change, step) pairs over all parameters as one flat
vector, optionally with a strong-Wolfe line search. Several closure evaluations per step."""
from functools import partial

from ..frontend import tracer as _tracing
from ..frontend.api_movement import cat
from ..frontend.autograd import enable_grad, no_grad
from ..frontend.creation import zeros
from ._line_search import strong_wolfe
from .optimizer import Optimizer, check_range


class LBFGS(Optimizer):
    """PyTorch's L-BFGS (one parameter group; `step(closure)` re-evaluates the model up to `max_eval` times).
    It decides on loss and gradient values in Python (convergence tests, the line search), so it runs eagerly only: a
    graphnet.compile'd function calling `step` raises GraphBreak (fullgraph=True) or falls back to eager."""

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search_fn=None):
        check_range("learning", lr, label="rate")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    # ---- the parameters as one flat vector -------------------------------------------------------------------------
    def _flat_grad(self):
        return cat([zeros(p.numel(), dtype=p.dtype, device=p.device) if p.grad is None else p.grad.reshape(-1)
                    for p in self._params], 0)

    def _move(self, t, d):
        """params += t * d, d a flat vector."""
        offset = 0
        for p in self._params:
            p.add_(d[offset:offset + p.numel()].view_as(p), alpha=t)
            offset += p.numel()

    def _evaluate_at(self, closure, x, t, *, d):
        """(loss, flat gradient) at x + t d, leaving the parameters at x."""
        self._move(t, d)
        loss = float(closure())
        grad = self._flat_grad()
        for p, value in zip(self._params, x):
            p.copy_(value)
        return loss, grad

    # ---- the step --------------------------------------------------------------------------------------------------
    def step(self, closure):
        """Run up to max_iter L-BFGS iterations; `closure` (required) zeroes the grads, computes the loss, calls
        backward and returns the loss. Returns the loss of the first evaluation."""
        if _tracing.active() is not None:
            raise _tracing.GraphBreak("LBFGS.step under graphnet.compile: it calls the closure several times and "
                                      "branches on loss and gradient values, so it runs eagerly; call it outside the "
                                      "compiled function (compile the closure's model instead)")
        with no_grad():
            return self._step(_with_grad(closure))

    def _step(self, closure):
        group = self.param_groups[0]
        lr, max_iter, max_eval = float(group["lr"]), group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = closure()
        loss, evals = float(orig_loss), 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if flat_grad.abs().max() <= tolerance_grad:
            return orig_loss
        d, t, prev_flat_grad, prev_loss = (state.get(k) for k in ("d", "t", "prev_flat_grad", "prev_loss"))
        old_dirs, old_stps, ro, h_diag = (state.get(k) for k in ("old_dirs", "old_stps", "ro", "H_diag"))

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d, old_dirs, old_stps, ro, h_diag = flat_grad.neg(), [], [], [], 1
            else:
                h_diag = _remember(flat_grad.sub(prev_flat_grad), d.mul(t), old_dirs, old_stps, ro,
                                   group["history_size"], h_diag)
                d = _two_loop(flat_grad, old_dirs, old_stps, ro, h_diag,
                              state.setdefault("al", [None] * group["history_size"]))
            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.clone()
            else:
                prev_flat_grad.copy_(flat_grad)
            prev_loss = loss
            t = min(1.0, 1.0 / flat_grad.abs().sum()) * lr if state["n_iter"] == 1 else lr
            gtd = flat_grad.dot(d)
            if gtd > -tolerance_change:  # not a descent direction
                break

            ls_evals, converged = 0, False
            if group["line_search_fn"] is not None:
                if group["line_search_fn"] != "strong_wolfe":
                    raise RuntimeError("only 'strong_wolfe' is supported")
                x = [p.clone() for p in self._params]
                loss, flat_grad, t, ls_evals = strong_wolfe(partial(self._evaluate_at, closure, x, d=d), t, d, loss,
                                                            flat_grad, gtd, max_ls=max_eval - evals)
                self._move(t, d)
                converged = flat_grad.abs().max() <= tolerance_grad
            else:
                self._move(t, d)
                if n_iter != max_iter:  # re-evaluate, unless this was the last iteration
                    loss = float(closure())
                    flat_grad = self._flat_grad()
                    converged = flat_grad.abs().max() <= tolerance_grad
                    ls_evals = 1
            evals += ls_evals
            state["func_evals"] += ls_evals

            if n_iter == max_iter or evals >= max_eval or converged:
                break
            if d.mul(t).abs().max() <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss


def _with_grad(closure):
    def call():
        with enable_grad():
            return closure()
    return call


def _remember(y, s, old_dirs, old_stps, ro, history_size, h_diag):
    """Add the curvature pair (y, s) when y.s > 1e-10 (dropping the oldest past history_size); returns the new
    initial Hessian scale y.s / y.y (or the old one when the pair is skipped)."""
    ys = y.dot(s)
    if not ys > 1e-10:
        return h_diag
    if len(old_dirs) == history_size:
        for history in (old_dirs, old_stps, ro):
            del history[0]
    old_dirs.append(y)
    old_stps.append(s)
    ro.append(1.0 / ys)
    return ys / y.dot(y)


def _two_loop(flat_grad, old_dirs, old_stps, ro, h_diag, al):
    """The L-BFGS two-loop recursion: -H g with H the limited-memory inverse Hessian (al holds the first loop's
    coefficients, kept in the state as PyTorch does)."""
    q = flat_grad.neg()
    for i in reversed(range(len(old_dirs))):
        al[i] = old_stps[i].dot(q) * ro[i]
        q.add_(old_dirs[i], alpha=-al[i])
    r = q.mul(h_diag)
    for i in range(len(old_dirs)):
        r.add_(old_stps[i], alpha=al[i] - old_dirs[i].dot(r) * ro[i])
    return r
