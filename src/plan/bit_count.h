/*
 * Set-bit counts for the plan's passes over a mask's row words. x86-64 code built for the
 * baseline has no POPCNT instruction, so spattn__popcount64 is bit arithmetic there, a large
 * share of a scattered mask's plan time (docs/performance.md, Planning). The passes that count
 * every row word are written once over `hw` and compiled twice, plain and with
 * PLAN_POPCNT_TARGET (POPCNT where the compiler takes the attribute; elsewhere the two builds
 * are the same code); a plan runs the second when spattn__plan_popcnt says so.
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
#define PLAN_POPCNT_TARGET
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
