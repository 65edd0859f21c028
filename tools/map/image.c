#include "image.h"

#include <stdint.h>
#include <stdlib.h>

int image_new(image *im, size_t w, size_t h, rgb bg)
{
    im->w = im->h = 0;
    im->px = NULL;
    if (w == 0 || h == 0 || w > SIZE_MAX / 3 / h)
        return -1;
    im->px = malloc(w * h * 3);
    if (im->px == NULL)
        return -1;
    im->w = w;
    im->h = h;
    for (size_t i = 0; i < w * h; i++) {
        im->px[3 * i] = bg.r;
        im->px[3 * i + 1] = bg.g;
        im->px[3 * i + 2] = bg.b;
    }
    return 0;
}

void image_free(image *im)
{
    free(im->px);
    im->px = NULL;
    im->w = im->h = 0;
}

void image_put(image *im, size_t x, size_t y, rgb c)
{
    if (x >= im->w || y >= im->h)
        return;
    unsigned char *p = im->px + 3 * (y * im->w + x);
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
}

void image_fill(image *im, size_t x, size_t y, size_t w, size_t h, rgb c)
{
    for (size_t yy = y; yy < y + h && yy < im->h; yy++)
        for (size_t xx = x; xx < x + w && xx < im->w; xx++)
            image_put(im, xx, yy, c);
}

void image_frame(image *im, size_t x, size_t y, size_t w, size_t h, rgb c)
{
    if (x == 0 || y == 0)
        return; /* no room outside; callers keep a margin */
    image_fill(im, x - 1, y - 1, w + 2, 1, c);
    image_fill(im, x - 1, y + h, w + 2, 1, c);
    image_fill(im, x - 1, y, 1, h, c);
    image_fill(im, x + w, y, 1, h, c);
}

rgb image_get(const image *im, size_t x, size_t y)
{
    rgb c = {0, 0, 0};
    if (x >= im->w || y >= im->h)
        return c;
    const unsigned char *p = im->px + 3 * (y * im->w + x);
    c.r = p[0];
    c.g = p[1];
    c.b = p[2];
    return c;
}

static unsigned char lerp8(unsigned char a, unsigned char b, double t)
{
    double v = a + (b - a) * t;
    return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5);
}

rgb rgb_mix(rgb c, rgb to, double t)
{
    rgb r = {lerp8(c.r, to.r, t), lerp8(c.g, to.g, t), lerp8(c.b, to.b, t)};
    return r;
}

int rgb_eq(rgb a, rgb b)
{
    return a.r == b.r && a.g == b.g && a.b == b.b;
}
