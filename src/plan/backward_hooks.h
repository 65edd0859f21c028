/* Test hook of the backward (plan/backward.c): not part of the public API. */
#ifndef SPATTN_PLAN_BACKWARD_HOOKS_H
#define SPATTN_PLAN_BACKWARD_HOOKS_H

#include <stddef.h>

/* dS slots (stored tiles) per band of query tiles; 0 restores the default. Tests make it
   small to cut even small problems into several bands. Process-wide. */
void spattn__bwd_set_band_slots(size_t slots);

#endif
