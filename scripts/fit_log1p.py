"""Fit the polynomial that vaekit's C kernel (src/vaekit/native/decoder.c) uses for log(1 + u), u in [0, 1].

log(1 + u) = u P(u), with P of degree 9 fitted by least squares to log(1 + u) / u at 2,000 Chebyshev
nodes of [0, 1], in float64. Prints the monomial coefficients (lowest first) and the largest error
of u P(u) on a fine grid, in float64 and in float32 Horner evaluation as the kernel does it.

    python scripts/fit_log1p.py
"""
import numpy as np
from numpy.polynomial import chebyshev, polynomial

DEGREE = 9
nodes = 0.5 + 0.5 * np.cos(np.pi * (np.arange(2000) + 0.5) / 2000)
fit = chebyshev.chebfit(2 * nodes - 1, np.log1p(nodes) / nodes, DEGREE)       # in t = 2u - 1
coefficients = polynomial.Polynomial(chebyshev.cheb2poly(fit))(polynomial.Polynomial([-1.0, 2.0])).coef

u = np.linspace(0.0, 1.0, 200_001)
exact = np.log1p(u)
approx64 = u * polynomial.polyval(u, coefficients)
u32, c32 = u.astype(np.float32), coefficients.astype(np.float32)
horner = np.full_like(u32, c32[-1])
for c in c32[-2::-1]:
    horner = horner * u32 + c
print("coefficients:", ", ".join(f"{c:.10e}f" for c in coefficients))
print(f"max |u P(u) - log(1 + u)|: {np.abs(approx64 - exact).max():.2e} (float64), "
      f"{np.abs((u32 * horner).astype(np.float64) - np.log1p(u32.astype(np.float64))).max():.2e} (float32)")
