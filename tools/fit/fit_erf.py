#!/usr/bin/env python3
"""Fits erf(x) ~ x * P(x^2) / Q(x^2) on [0, XMAX] (minimax in absolute error), Q(0) = 1:
iteratively reweighted least squares (Loeb's linearisation, Lawson's weights). Prints the
coefficients as C float literals and the double-precision fit error.

    python3 tools/fit/fit_erf.py 6,5      # degrees of P and Q: src/nn/gelu.inc's erf_rational

A development tool (numpy), never a build or test dependency."""
import math, sys
import numpy as np

XMAX = 3.9192059040069580  # erf(x) rounds to 1.0f beyond (nextafter(1,0) = 1 - 2^-24)
def fit(np_, nq, iters=60):
    k = np.arange(20000)
    x = np.concatenate([XMAX * 0.5 * (1 - np.cos(np.pi * (k + 0.5) / len(k))), np.linspace(0, XMAX, 20000)])
    x = np.unique(x)
    f = np.array([math.erf(v) for v in x])
    s = (x * x) / (XMAX * XMAX)  # scaled variable in [0, 1]
    w = np.ones_like(x)
    q_prev = np.ones_like(x)
    best = None
    for it in range(iters):
        cols = [x * s ** i for i in range(np_ + 1)] + [-f * s ** j for j in range(1, nq + 1)]
        A = np.stack(cols, 1) * (w / q_prev)[:, None]
        b = f * (w / q_prev)
        c, *_ = np.linalg.lstsq(A, b, rcond=None)
        p, q = c[: np_ + 1], np.concatenate([[1.0], c[np_ + 1:]])
        P = sum(p[i] * s ** i for i in range(np_ + 1))
        Q = sum(q[j] * s ** j for j in range(nq + 1))
        err = x * P / Q - f
        e = np.max(np.abs(err))
        if best is None or e < best[0]:
            best = (e, p.copy(), q.copy())
        q_prev = Q
        w = w * np.abs(err) ** 0.5
        w /= w.mean()
        w = np.maximum(w, 1e-6)
    e, p, q = best
    sc = 1.0 / (XMAX * XMAX)
    return e, [p[i] * sc ** i for i in range(np_ + 1)], [q[j] * sc ** j for j in range(nq + 1)]

for np_, nq in [(int(a), int(b)) for a, b in (t.split(",") for t in sys.argv[1:])] or [(5, 4), (6, 4), (6, 5)]:
    e, p, q = fit(np_, nq)
    print(f"P deg {np_} Q deg {nq}: max abs error {e:.3e}")
    print("  P:", ", ".join(f"{v:.9e}f" for v in p))
    print("  Q:", ", ".join(f"{v:.9e}f" for v in q))
