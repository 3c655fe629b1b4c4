"""The strong-Wolfe line search LBFGS uses (PyTorch's: minFunc's bracketing then zoom, with safeguarded cubic
interpolation). Losses are Python floats; directional derivatives are 0-d tensors, as in PyTorch."""


def cubic_minimizer(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimizer of the cubic through (x1, f1, slope g1) and (x2, f2, slope g2), clipped to `bounds` (default:
    the interval of x1, x2); the bounds' midpoint when the cubic has no real minimizer."""
    low, high = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    disc = d1 ** 2 - g1 * g2
    if not disc >= 0:
        return (low + high) / 2.0
    d2 = disc.sqrt()
    if x1 <= x2:
        x = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        x = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(x, low), high)


class _Point:
    """One trial of the search: step t, loss f, flat gradient g and directional derivative gtd."""

    __slots__ = ("t", "f", "g", "gtd")

    def __init__(self, t, f, g, gtd):
        self.t, self.f, self.g, self.gtd = t, f, g, gtd


def strong_wolfe(evaluate, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """Search along d from loss f (gradient g, slope gtd < 0) for a step t meeting the strong Wolfe conditions;
    `evaluate(t)` gives (loss, flat gradient) at x + t d. Returns (loss, flat gradient, t, evaluations)."""
    d_norm = d.abs().max()
    start = _Point(0, f, g.clone(), gtd)
    prev = start

    def trial(step):
        loss, grad = evaluate(step)
        return _Point(step, loss, grad, grad.dot(d))

    new, evals, ls_iter = trial(t), 1, 0

    def sufficient(p):
        return not p.f > f + c1 * p.t * gtd

    def curvature(p):
        return abs(p.gtd) <= -c2 * gtd

    bracket, done = None, False
    while ls_iter < max_ls:  # bracketing phase: grow t until an interval holds a point meeting both conditions
        if not sufficient(new) or (ls_iter > 1 and new.f >= prev.f):
            bracket = [prev, _Point(new.t, new.f, new.g.clone(), new.gtd)]
            break
        if curvature(new):
            bracket, done = [new], True
            break
        if new.gtd >= 0:
            bracket = [prev, _Point(new.t, new.f, new.g.clone(), new.gtd)]
            break
        step = cubic_minimizer(prev.t, prev.f, prev.gtd, new.t, new.f, new.gtd,
                               bounds=(new.t + 0.01 * (new.t - prev.t), new.t * 10))
        prev = _Point(new.t, new.f, new.g.clone(), new.gtd)
        new = trial(step)
        evals += 1
        ls_iter += 1
    if ls_iter == max_ls:
        bracket = [_Point(0, f, start.g, None), _Point(new.t, new.f, new.g, None)]

    insufficient_progress = False
    low, high = (0, 1) if bracket[0].f <= bracket[-1].f else (1, 0)
    while not done and ls_iter < max_ls:  # zoom phase: shrink the bracket by safeguarded cubic steps
        a, b = bracket
        if abs(b.t - a.t) * d_norm < tolerance_change:
            break
        step = cubic_minimizer(a.t, a.f, a.gtd, b.t, b.f, b.gtd)
        lo_t, hi_t = min(a.t, b.t), max(a.t, b.t)
        eps = 0.1 * (hi_t - lo_t)
        if min(hi_t - step, step - lo_t) < eps:  # too close to an end: move it inside unless it just was
            if insufficient_progress or step >= hi_t or step <= lo_t:
                step = hi_t - eps if abs(step - hi_t) < abs(step - lo_t) else lo_t + eps
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        new = trial(step)
        evals += 1
        ls_iter += 1
        kept = _Point(new.t, new.f, new.g.clone(), new.gtd)
        if not sufficient(new) or new.f >= bracket[low].f:
            bracket[high] = kept
            low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
        else:
            if curvature(new):
                done = True
            elif new.gtd * (bracket[high].t - bracket[low].t) >= 0:
                bracket[high] = bracket[low]
            bracket[low] = kept
    best = bracket[low]
    return best.f, best.g, best.t, evals
