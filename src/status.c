#include "spattn.h"

#define STR2(x) #x
#define STR(x) STR2(x)

const char *spattn_status_string(spattn_status s)
{
    switch (s) {
    case SPATTN_OK:
        return "ok";
    case SPATTN_E_NULL:
        return "a required pointer is NULL";
    case SPATTN_E_SHAPE:
        return "zero, inconsistent or overflowing size or stride";
    case SPATTN_E_MASK:
        return "malformed mask input, or mask shape does not match the problem";
    case SPATTN_E_ARG:
        return "invalid argument";
    case SPATTN_E_UNSUPPORTED:
        return "ISA or feature not available in this build or on this CPU";
    case SPATTN_E_NOMEM:
        return "out of memory";
    }
    return "unknown status";
}

const char *spattn_version(void)
{
    return STR(SPATTN_VERSION_MAJOR) "." STR(SPATTN_VERSION_MINOR) "." STR(SPATTN_VERSION_PATCH);
}

spattn_layout spattn_layout_bhtd(size_t heads, size_t len, size_t dim)
{
    spattn_layout l;
    l.token = (ptrdiff_t)dim;
    l.head = (ptrdiff_t)(len * dim);
    l.batch = (ptrdiff_t)(heads * len * dim);
    return l;
}

spattn_layout spattn_layout_bthd(size_t heads, size_t len, size_t dim)
{
    spattn_layout l;
    l.head = (ptrdiff_t)dim;
    l.token = (ptrdiff_t)(heads * dim);
    l.batch = (ptrdiff_t)(len * heads * dim);
    return l;
}
