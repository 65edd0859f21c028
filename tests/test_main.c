/* spattn-tests: every Check suite of suites.inc in one runner. CK_RUN_SUITE / CK_RUN_CASE
   select parts. When SPATTN_ISA forces an ISA this host cannot run, the run is skipped (exit 77,
   which ctest reports as skipped) rather than failed: the per-ISA ctest entries are registered
   for every ISA the build has. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spattn.h"

#define SPATTN_SUITE(fn) Suite *fn(void);
#include "suites.inc"
#undef SPATTN_SUITE

int main(void)
{
    const char *env = getenv("SPATTN_ISA");
    const char *expect_bad = getenv("SPATTN_TEST_EXPECT_BAD_ISA");
    if (env && *env && !(expect_bad && *expect_bad) && spattn_isa_selected() == SPATTN_ISA_AUTO) {
        printf("SPATTN_ISA=%s is not runnable here: %s; skipping\n", env,
               spattn_isa_unavailable_reason(SPATTN_ISA_AUTO));
        return 77;
    }
    SRunner *sr = srunner_create(NULL);
#define SPATTN_SUITE(fn) srunner_add_suite(sr, fn());
#include "suites.inc"
#undef SPATTN_SUITE
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
