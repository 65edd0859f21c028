/* Test hook of the backward (plan/backward.c): not part of the public API. */
#ifndef SPATTN_PLAN_BACKWARD_HOOKS_H
#define SPATTN_PLAN_BACKWARD_HOOKS_H

#include <stddef.h>

/* Floats of kept dS per band of query tiles; 0 restores the default. Tests make it small to
   cut even small problems into several bands. Process-wide. */
void spattn__bwd_set_band_floats(size_t floats);

#endif
