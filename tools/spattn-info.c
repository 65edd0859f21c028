/* spattn-info: what this build and this machine can run, and what AUTO picks.
     spattn-info          the report
     spattn-info --isas   the ISAs compiled into this build, one per line, best first */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spattn.h"

static int list_isas(void)
{
    spattn_isa isas[16];
    size_t n = spattn_isas_compiled(isas, sizeof isas / sizeof isas[0]);
    if (n > sizeof isas / sizeof isas[0]) {
        fprintf(stderr, "spattn-info: more ISAs than this tool can list\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        printf("%s\n", spattn_isa_name(isas[i]));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--isas") == 0)
        return list_isas();
    if (argc != 1) {
        fprintf(stderr, "usage: spattn-info [--isas]\n");
        return 2;
    }
    const char *features = spattn_cpu_features();
    printf("spattn %s\n", spattn_version());
    printf("cpu features: %s\n", features[0] != '\0' ? features : "(none)");

    printf("isa:\n");
    /* Every ISA the library knows, compiled in or not: the names end at "unknown". */
    for (int i = SPATTN_ISA_SCALAR; strcmp(spattn_isa_name((spattn_isa)i), "unknown") != 0; i++) {
        spattn_isa isa = (spattn_isa)i;
        const char *why = spattn_isa_unavailable_reason(isa);
        const char *skip = spattn_isa_auto_skip_reason(isa);
        if (why)
            printf("  %-10s available: no (%s)\n", spattn_isa_name(isa), why);
        else if (skip)
            printf("  %-10s available: yes, AUTO passes over it (%s)\n", spattn_isa_name(isa),
                   skip);
        else
            printf("  %-10s available: yes\n", spattn_isa_name(isa));
    }
    const char *env = getenv("SPATTN_ISA");
    spattn_isa sel = spattn_isa_selected();
    if (env != NULL && env[0] != '\0')
        printf("SPATTN_ISA=%s\n", env);
    else
        printf("SPATTN_ISA: not set (AUTO picks the best available it does not pass over)\n");
    if (sel == SPATTN_ISA_AUTO) {
        printf("auto selects: nothing: %s; calls using AUTO fail with SPATTN_E_UNSUPPORTED\n",
               spattn_isa_unavailable_reason(SPATTN_ISA_AUTO));
        return 1;
    }
    printf("auto selects: %s\n", spattn_isa_name(sel));
    return 0;
}
