/* The two cheap ends of an MLP decoder scored by a Bernoulli likelihood, many decodes per image; the
 * expensive middle, the last layer's matrix product, stays with torch (vaekit.evaluation.fused calls
 * torch.mm between the two, on buffers it allocated). This file uses only standard headers and
 * links against nothing: it works on the float32 buffers it is handed, never on another library's
 * internals, so a new torch or BLAS cannot break it.
 *
 * vaekit_linear_relu: the first layer, h = relu(W z + b), for a thin input (the latent code), with
 * the codes read sample-major, z[s][b], and h written image-major, h[b][s], so that no transposed
 * copy is made.
 *
 * vaekit_bernoulli_rows: the log-likelihood, in one pass over the logits,
 *
 *   out[b * out_stride + s] = sum_j x[b][j] * v - softplus(v),   v = l[b * per_image + s][j] + bias[j],
 *
 * for a (images * per_image) x d matrix of logits whose rows are image-major, the last layer's bias
 * (d values, or NULL for none) added on the way, so the product before it needs no bias pass; the
 * sums land image-major with a row stride, so a loop over chunks of samples can write each chunk's
 * results straight into a (images x K) array. Built by vaekit.evaluation.native with the machine's
 * own vector width; fused.py calls it where it loads, else computes the same sums with torch. Plain
 * C for gcc's and clang's vectorisers: the likelihood loop has no branches and no calls, so it runs
 * on 16 floats at once.
 *
 * softplus(l) = max(l, 0) + log(1 + u),  u = exp(-|l|) in (0, 1]: exp never overflows.
 * exp(x), x in [-40, 0]: x = n ln2 + r with n an integer and |r| <= ln2 / 2, exp(x) = 2^n exp(r), and
 *   exp(r) by its Taylor series to r^7 (the first term left out, r^8 / 8!, is below 6e-9).
 *   ln2 is split into a part exact in float and a remainder (Cody & Waite 1980), so r is exact.
 * log(1 + u) = u P(u), P of degree 9 fitted by least squares to log(1 + u) / u on [0, 1]
 *   (scripts/fit_log1p.py): error below 4e-9 in exact arithmetic, and relative accuracy for small u.
 *   A polynomial, not the atanh series, because a division costs as much as the rest together.
 * Below x = -40 exp(x) is taken as exp(-40) ~ 4e-18 (softplus is then off by less than 5e-18), so no
 *   intermediate falls below float's normal range, where CPUs slow down many-fold.
 * Absolute error per value, measured against float64: under 5e-7 (tests/test_fused_eval.py).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Read at run time (volatile): were the floor a constant, gcc would fold the clamped lanes' result
 * into a constant and run the polynomials on the unclamped values, whose denormals cost 30x. */
static volatile float exp_floor = -40.f;

static inline float softplus(float l, float lowest)
{
    float a = l < 0.f ? -l : l;
    float x = -a < lowest ? lowest : -a;
    /* round to nearest: adding and subtracting 1.5 * 2^23 leaves the integer part */
    float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.42860682030941723212e-6f;
    float p = 1.f + r * (1.f + r * (1.f / 2 + r * (1.f / 6 + r * (1.f / 24 + r * (1.f / 120 + r * (1.f / 720 + r * (1.f / 5040)))))));
    int32_t bits = ((int32_t)n + 127) << 23;   /* 2^n, n in [-58, 0] */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float u = p * scale;
    float log1p_u = u * (9.9999999538e-01f + u * (-4.9999903993e-01f + u * (3.3330004035e-01f
                    + u * (-2.4954558871e-01f + u * (1.9678117257e-01f + u * (-1.5311863105e-01f
                    + u * (1.0614264693e-01f + u * (-5.7064200825e-02f + u * (1.9907160963e-02f
                    + u * -3.2563784818e-03f)))))))));
    return (l > 0.f ? l : 0.f) + log1p_u;
}

/* Eight vectors of 16 floats (GCC's and clang's vector extension: AVX-512 registers where the CPU has
 * them, pairs or quads of narrower ones elsewhere), so that 128 outputs stay in registers while the
 * inputs are summed; plain arrays would be kept on the stack, costing 4x. */
typedef float vec16 __attribute__((vector_size(64)));
typedef int int16v __attribute__((vector_size(64)));
#define LANES 16
#define VECTORS 8

static inline vec16 load16(const float *p) { vec16 v; memcpy(&v, p, sizeof v); return v; }
static inline void store16(float *p, vec16 v) { memcpy(p, &v, sizeof v); }
/* max(v, 0): the comparison gives all-ones lanes where v > 0, which keep v's bits; the rest become +0. */
static inline vec16 relu16(vec16 v) { return (vec16)((int16v)v & (v > (vec16){0})); }

void vaekit_linear_relu(const float *z, const float *wt, const float *bias, long images, long per_image,
                        long in, long out, float *h)
{
    /* z: per_image x images x in; wt: in x out (the Linear's weight transposed); h: (images * per_image) x out */
    for (long b = 0; b < images; b++) {
        for (long s = 0; s < per_image; s++) {
            const float *code = z + (s * images + b) * in;
            float *row = h + (b * per_image + s) * out;
            long j = 0;
            for (; j + VECTORS * LANES <= out; j += VECTORS * LANES) {
                vec16 total[VECTORS];
                for (int v = 0; v < VECTORS; v++)
                    total[v] = load16(bias + j + v * LANES);
                for (long k = 0; k < in; k++) {
                    const float *w = wt + k * out + j;
                    const vec16 c = (vec16){0} + code[k];
                    for (int v = 0; v < VECTORS; v++)
                        total[v] += c * load16(w + v * LANES);
                }
                for (int v = 0; v < VECTORS; v++)
                    store16(row + j + v * LANES, relu16(total[v]));
            }
            for (; j < out; j++) {
                float total = bias[j];
                for (long k = 0; k < in; k++)
                    total += code[k] * wt[k * out + j];
                row[j] = total > 0.f ? total : 0.f;
            }
        }
    }
}

/* The bias test is outside the loops once gcc unswitches them (-O3). */
void vaekit_bernoulli_rows(const float *logits, const float *bias, const float *x, long images, long per_image,
                           long d, float *out, long out_stride)
{
    const float lowest = exp_floor;
    for (long b = 0; b < images; b++) {
        const float *xb = x + b * d;
        for (long s = 0; s < per_image; s++) {
            const float *l = logits + (b * per_image + s) * d;
            float total = 0.f;
#pragma omp simd reduction(+ : total)
            for (long j = 0; j < d; j++) {
                const float v = bias ? l[j] + bias[j] : l[j];
                total += xb[j] * v - softplus(v, lowest);
            }
            out[b * out_stride + s] = total;
        }
    }
}
