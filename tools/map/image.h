/* A plain 8-bit RGB canvas with clipped drawing, what the map renderer paints on. */
#ifndef SPATTN_TOOLS_IMAGE_H
#define SPATTN_TOOLS_IMAGE_H

#include <stddef.h>

typedef struct rgb {
    unsigned char r, g, b;
} rgb;

typedef struct image {
    size_t w, h;
    unsigned char *px; /* h rows of w pixels, 3 bytes each */
} image;

/* 0, or -1 when out of memory or w * h * 3 overflows. */
int image_new(image *im, size_t w, size_t h, rgb background);
void image_free(image *im);

/* Drawing outside the canvas is clipped, never an error. */
void image_put(image *im, size_t x, size_t y, rgb c);
void image_fill(image *im, size_t x, size_t y, size_t w, size_t h, rgb c);
/* An outline one pixel wide around the rectangle (x, y, w, h), drawn just outside it. */
void image_frame(image *im, size_t x, size_t y, size_t w, size_t h, rgb c);
rgb image_get(const image *im, size_t x, size_t y);

/* c moved `t` (0..1) of the way towards `to`. */
rgb rgb_mix(rgb c, rgb to, double t);
int rgb_eq(rgb a, rgb b);

#endif
