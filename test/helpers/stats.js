"use strict";
// Chi-square goodness-of-fit for the statistical tests (rng.test.js, samplers.test.js).
// p-values come from the regularized upper incomplete gamma function Q(dof / 2, stat / 2)
// (Numerical Recipes' series and continued fraction, Lanczos log-gamma); rng.test.js checks
// gammaQ against scipy reference values.
const assert = require("node:assert/strict");

/**
 * Per-check significance level: a check fails when p < ALPHA. With the few dozen checks in a
 * suite, a correct generator or sampler fails it with probability < 1e-4, while the defects the
 * checks target give p-values far below 1e-20 at the sample sizes used.
 */
const ALPHA = 1e-6;

/** log(Gamma(z)), Lanczos approximation (g = 7, 9 terms). */
function lnGamma(z) {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - lnGamma(1 - z);
  z -= 1;
  let x = c[0];
  for (let i = 1; i < 9; i++) x += c[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(x);
}

/** The regularized upper incomplete gamma function Q(a, x) = Gamma(a, x) / Gamma(a). */
function gammaQ(a, x) {
  if (x <= 0) return 1;
  const front = Math.exp(-x + a * Math.log(x) - lnGamma(a));
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 10000 && term > sum * 1e-16; n++) sum += (term *= x / (a + n));
    return Math.max(0, 1 - sum * front);
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return front * h;
}

/** Pearson's chi-square of `counts` against probabilities `probs`: { stat, dof, p }. */
function chiSquare(counts, probs) {
  assert.equal(counts.length, probs.length, "chiSquare: one probability per count");
  const total = counts.reduce((s, c) => s + c, 0);
  let stat = 0;
  counts.forEach((c, i) => {
    const e = total * probs[i];
    stat += (c - e) ** 2 / e;
  });
  const dof = counts.length - 1;
  return { stat, dof, p: gammaQ(dof / 2, stat / 2) };
}

/** Fails unless `counts` fit `probs` (Pearson chi-square, p > alpha). */
function assertFits(counts, probs, what, alpha = ALPHA) {
  const r = chiSquare(counts, probs);
  assert.ok(r.p > alpha, `${what}: chi-square ${r.stat.toFixed(2)} on ${r.dof} dof, p = ${r.p.toExponential(2)} < ${alpha}; counts ${counts}`);
}

/** k equal probabilities. */
const uniform = (k) => new Array(k).fill(1 / k);

/** Weights scaled to sum to 1. */
const normalize = (w) => {
  const t = w.reduce((s, x) => s + x, 0);
  return w.map((x) => x / t);
};

module.exports = { ALPHA, lnGamma, gammaQ, chiSquare, assertFits, uniform, normalize };
