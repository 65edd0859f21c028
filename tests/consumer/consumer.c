/* A program written only against the documented API (no internal header, no reference of the
   library's own): it checks spattn_forward against its own double-precision loop for every
   available ISA, with 1 and 2 threads giving the same bits. Built against an installed spattn,
   once through find_package and once through pkg-config --static. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spattn.h>

enum { B = 2, HQ = 4, HKV = 2, L = 77, D = 40 };

static float q[B * HQ * L * D], k[B * HKV * L * D], v[B * HKV * L * D];
static float o1[B * HQ * L * D], o2[B * HQ * L * D];

static double naive(int b, int h, int i, int d, const uint8_t *allowed)
{
    int hk = h / (HQ / HKV);
    const float *qi = q + ((b * HQ + h) * L + i) * D;
    double s[L], m = -INFINITY, l = 0, acc = 0;
    for (int j = 0; j < L; j++) {
        if (!allowed[i * L + j])
            continue;
        const float *kj = k + ((b * HKV + hk) * L + j) * D;
        double dot = 0;
        for (int t = 0; t < D; t++)
            dot += (double)qi[t] * kj[t];
        s[j] = dot / sqrt((double)D);
        if (s[j] > m)
            m = s[j];
    }
    if (m == -INFINITY)
        return 0.0;
    for (int j = 0; j < L; j++)
        if (allowed[i * L + j]) {
            double p = exp(s[j] - m);
            l += p;
            acc += p * v[((b * HKV + hk) * L + j) * D + d];
        }
    return acc / l;
}

int main(void)
{
    unsigned seed = 12345;
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
        q[i] = (float)((seed = seed * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        k[i] = (float)((seed = seed * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
        v[i] = (float)((seed = seed * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
    }
    spattn_mask *m;
    if (spattn_mask_window(L, L, 9, 3, &m) != SPATTN_OK)
        return 1;
    uint8_t allowed[L * L];
    spattn_mask_to_dense(m, allowed, L);

    spattn_args a;
    memset(&a, 0, sizeof a);
    spattn_shape shape = {B, HQ, HKV, L, L, D, D};
    a.shape = shape;
    a.q = q;
    a.q_layout = spattn_layout_bhtd(HQ, L, D);
    a.k = k;
    a.k_layout = spattn_layout_bhtd(HKV, L, D);
    a.v = v;
    a.v_layout = spattn_layout_bhtd(HKV, L, D);
    a.o_layout = spattn_layout_bhtd(HQ, L, D);
    const spattn_mask *masks[1] = {m};
    int failures = 0, tried = 0;
    for (int isa = SPATTN_ISA_SCALAR; isa <= SPATTN_ISA_NEON_BF16; isa++) {
        if (!spattn_isa_available((spattn_isa)isa))
            continue;
        spattn_options one = {(spattn_isa)isa, 1}, two = {(spattn_isa)isa, 2};
        a.o = o1;
        if (spattn_forward(&a, masks, 1, &one) != SPATTN_OK)
            return 1;
        a.o = o2;
        if (spattn_forward(&a, masks, 1, &two) != SPATTN_OK)
            return 1;
        if (memcmp(o1, o2, sizeof o1) != 0) {
            printf("%s: 1 and 2 threads differ\n", spattn_isa_name((spattn_isa)isa));
            failures++;
        }
        for (int b = 0; b < B; b++)
            for (int h = 0; h < HQ; h++)
                for (int i = 0; i < L; i++)
                    for (int d = 0; d < D; d++) {
                        double want = naive(b, h, i, d, allowed);
                        float got = o1[((b * HQ + h) * L + i) * D + d];
                        if (!(fabs(got - want) <= 2e-5 * (1 + fabs(want))))
                            failures++;
                    }
        tried++;
        printf("consumer: %s checked\n", spattn_isa_name((spattn_isa)isa));
    }
    spattn_mask_free(m);
    printf("consumer: %d ISAs, %d mismatches\n", tried, failures);
    return failures == 0 && tried > 0 ? 0 : 1;
}
