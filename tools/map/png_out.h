/* Writing an RGB canvas as an 8-bit PNG with libpng. */
#ifndef SPATTN_TOOLS_PNG_OUT_H
#define SPATTN_TOOLS_PNG_OUT_H

#include <stddef.h>

#include "image.h"

/* 0 on success; -1 with a one-line reason in err (naming the path) otherwise. A failed write
   removes the partial file. */
int png_write(const char *path, const image *im, char *err, size_t errlen);

#endif
