/* A tiny built-in 5x7 bitmap font for labels: A-Z (lower case is drawn as upper case), 0-9,
   space and . , : ; - _ = + ( ) / < > % # ? ! ' ; any other character is drawn as '?'. */
#ifndef SPATTN_TOOLS_FONT5X7_H
#define SPATTN_TOOLS_FONT5X7_H

#include <stddef.h>

#include "image.h"

#define FONT_W 5
#define FONT_H 7
#define FONT_ADVANCE 6 /* glyph width plus one column of spacing, before scaling */

/* Pixels `s` takes at `scale` (each glyph pixel drawn as scale x scale). */
size_t font_width(const char *s, size_t scale);

/* Draws s with its top-left corner at (x, y); stops before a glyph would pass x + max_w
   (max_w 0 = no limit). Returns the width drawn. */
size_t font_draw(image *im, size_t x, size_t y, const char *s, size_t scale, rgb c, size_t max_w);

/* Draws s top to bottom, one glyph under the other (for a vertical axis name). */
void font_draw_down(image *im, size_t x, size_t y, const char *s, size_t scale, rgb c);

/* Nonzero when glyph pixel (col, row) of character ch is set (for tests). */
int font_pixel(char ch, int col, int row);

#endif
