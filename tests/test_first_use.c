/* The library's first use from many threads at once: CPU detection, the dispatch table and
   SPATTN_ISA are filled by whichever thread comes first, and every thread must see the same,
   complete result. A process of its own, because in the Check runner earlier tests have done
   the first use already. Run under TSan in CI (tools/ci/sanitize.sh). */
#define _POSIX_C_SOURCE 200809L /* pthread barriers */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "spattn.h"

enum { THREADS = 8, L = 19, D = 7, MAX_ISAS = 16 };

static pthread_barrier_t start;

typedef struct result {
    spattn_isa selected;
    int available[MAX_ISAS];
    spattn_status st;
    float o[L * D];
} result;

/* Every value of the ISA enum from AUTO on: up to the first that spattn_isa_name does not
   know (a pure function, so asking it changes no first-use state). */
static int isa_end(void)
{
    int end = SPATTN_ISA_SCALAR;
    while (end < MAX_ISAS && strcmp(spattn_isa_name((spattn_isa)end), "unknown") != 0)
        end++;
    return end;
}

static void *first_use(void *arg)
{
    result *r = arg;
    float q[L * D], k[L * D], v[L * D];
    for (int i = 0; i < L * D; i++) {
        q[i] = (float)((i * 7) % 11) / 11.0f;
        k[i] = (float)((i * 5) % 13) / 13.0f;
        v[i] = (float)((i * 3) % 17) / 17.0f;
    }
    pthread_barrier_wait(&start);
    r->selected = spattn_isa_selected();
    for (int i = 0; i < isa_end(); i++)
        r->available[i] = spattn_isa_available((spattn_isa)i);
    spattn_args a;
    memset(&a, 0, sizeof a);
    spattn_shape sh = {1, 1, 1, L, L, D, D};
    a.shape = sh;
    a.q = q;
    a.k = k;
    a.v = v;
    a.o = r->o;
    a.q_layout = a.k_layout = a.v_layout = a.o_layout = spattn_layout_bhtd(1, L, D);
    spattn_options opt = {SPATTN_ISA_AUTO, 1};
    r->st = spattn_forward(&a, NULL, 0, &opt);
    return NULL;
}

int main(void)
{
    pthread_t t[THREADS];
    result res[THREADS];
    memset(res, 0, sizeof res);
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, first_use, &res[i]);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);

    int failed = 0;
    if (res[0].st != SPATTN_OK || res[0].selected == SPATTN_ISA_AUTO ||
        !res[0].available[SPATTN_ISA_SCALAR]) {
        printf("first use: thread 0 got status %d, selected %d\n", res[0].st, res[0].selected);
        failed++;
    }
    for (int i = 1; i < THREADS; i++)
        if (res[i].selected != res[0].selected ||
            memcmp(res[i].available, res[0].available, sizeof res[0].available) != 0 ||
            res[i].st != res[0].st || memcmp(res[i].o, res[0].o, sizeof res[0].o) != 0) {
            printf("first use: thread %d saw a different library state or result\n", i);
            failed++;
        }
    printf("%d passed, %d failed\n", THREADS - failed, failed);
    return failed != 0;
}
