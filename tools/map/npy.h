/* A strict reader for NumPy .npy files (format versions 1.0, 2.0, 3.0) of the few element
   types spattn-map needs. Anything else is refused with a message that says what was found and
   what would be accepted. */
#ifndef SPATTN_TOOLS_NPY_H
#define SPATTN_TOOLS_NPY_H

#include <stddef.h>

#define NPY_MAX_DIMS 8

typedef enum npy_dtype {
    NPY_F32,  /* '<f4' (or '=f4' on this little-endian host) */
    NPY_BOOL, /* '|b1' */
    NPY_U8    /* '|u1' */
} npy_dtype;

typedef struct npy_array {
    npy_dtype dtype;
    int ndim;
    size_t shape[NPY_MAX_DIMS];
    size_t count; /* product of shape (1 for a 0-d array) */
    void *data;   /* count elements, C order: float for NPY_F32, unsigned char otherwise */
} npy_array;

/* Parses a whole .npy image held in memory. Returns 0 and fills *out (free with npy_free), or
   -1 with a one-line reason in err (errlen bytes, always terminated) and *out left empty. */
int npy_parse(const unsigned char *buf, size_t len, npy_array *out, char *err, size_t errlen);

/* The same for a file; err names the file. */
int npy_read(const char *path, npy_array *out, char *err, size_t errlen);

void npy_free(npy_array *a);

/* "float32", "bool", "uint8". */
const char *npy_dtype_name(npy_dtype t);

#endif
