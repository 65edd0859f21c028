/* Every allocation of the library goes through here, so that tests can make the n-th one fail
   and check that each failure path returns SPATTN_E_NOMEM cleanly. */
#ifndef SPATTN_ALLOC_H
#define SPATTN_ALLOC_H

#include <stddef.h>

void *spattn__malloc(size_t bytes);          /* NULL for 0 bytes too */
void *spattn__calloc(size_t n, size_t size); /* overflow-checked */
void *spattn__realloc(void *p, size_t bytes);
void spattn__free(void *p);
void *spattn__aligned_alloc(size_t bytes); /* 64-byte aligned */
void spattn__aligned_free(void *p);

/* Tests only: make the n-th allocation from now fail (n >= 1); 0 disables. Returns how many
   allocations were made since the last call (to size failure-injection loops). */
long spattn__test_fail_alloc_at(long n);

#endif
