/*
 * Set-bit counts for the plan's passes over a mask's row words. x86-64 code built for the
 * baseline has no POPCNT instruction, so spattn__popcount64 is bit arithmetic there, and
 * those counts were most of a scattered mask's plan time. The passes that count every row word
 * are written once over `hw` and compiled twice, plain and (where the compiler takes the
 * attribute) for POPCNT; a plan runs the second when the CPU has POPCNT. Both count the same.
 */
#ifndef SPATTN_PLAN_BIT_COUNT_H
#define SPATTN_PLAN_BIT_COUNT_H

#include <stdint.h>

#include "mask/mask_impl.h"

#if (defined(__x86_64__) || defined(__i386__)) && !defined(__POPCNT__) && defined(__GNUC__)
#define PLAN_POPCNT_CLONE 1
#define PLAN_POPCNT_TARGET __attribute__((target("popcnt")))
#else
#define PLAN_POPCNT_CLONE 0
#endif

#define PLAN_INLINE static inline __attribute__((always_inline))

/* x's set bits: the instruction in a POPCNT clone (hw 1), else spattn__popcount64. */
PLAN_INLINE unsigned plan_popcount(uint64_t x, const int hw)
{
#if PLAN_POPCNT_CLONE
    if (hw)
        return (unsigned)__builtin_popcountll(x);
#endif
    (void)hw;
    return spattn__popcount64(x);
}

/* Whether plans run the POPCNT clones: compiled in, the CPU has the instruction, and no test
   has turned them off (spattn__set_plan_popcnt). */
int spattn__plan_popcnt(void);

#endif
