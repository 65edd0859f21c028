/* spattn-tests: every Check suite of suites.inc in one runner. CK_RUN_SUITE / CK_RUN_CASE
   select parts. When SPATTN_ISA forces an ISA this host cannot run, the run is skipped (exit 77,
   which ctest reports as skipped) rather than failed: the per-ISA ctest entries are registered
   for every ISA the build has. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spattn.h"

/* Built with AddressSanitizer (clang's spelling, then gcc's): LeakSanitizer's interface. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_LSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(TEST_LSAN)
#define TEST_LSAN 1
#endif
#ifdef TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

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
#ifdef TEST_LSAN
    /* The leak check now, not at exit: LeakSanitizer stops every thread to scan it, and at
       exit the OpenMP runtime is tearing its worker threads down, a race in which the check
       can fail with "LeakSanitizer has encountered a fatal error" whatever the leaks. Here
       the workers are idle; the check at exit is then skipped. */
    __lsan_do_leak_check();
#endif
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
