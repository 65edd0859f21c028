#include "alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

/* Failure injection state: written only by tests. countdown == 0 means off. */
static atomic_long countdown;
static atomic_long made;

static int injected_failure(void)
{
    atomic_fetch_add(&made, 1);
    long c = atomic_load(&countdown);
    while (c > 0) {
        if (atomic_compare_exchange_weak(&countdown, &c, c - 1))
            return c == 1;
    }
    return 0;
}

long spattn__test_fail_alloc_at(long n)
{
    atomic_store(&countdown, n > 0 ? n : 0);
    return atomic_exchange(&made, 0);
}

void *spattn__malloc(size_t bytes)
{
    if (bytes == 0 || injected_failure())
        return NULL;
    return malloc(bytes);
}

void *spattn__calloc(size_t n, size_t size)
{
    if (n == 0 || size == 0 || n > SIZE_MAX / size || injected_failure())
        return NULL;
    return calloc(n, size);
}

void *spattn__realloc(void *p, size_t bytes)
{
    if (bytes == 0 || injected_failure())
        return NULL;
    return realloc(p, bytes);
}

void spattn__free(void *p)
{
    free(p);
}

void *spattn__aligned_alloc(size_t bytes)
{
    if (bytes == 0 || bytes > SIZE_MAX - 64 || injected_failure())
        return NULL;
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

void spattn__aligned_free(void *p)
{
    free(p);
}
