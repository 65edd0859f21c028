/* Which benchmarks a run registers. */
#ifndef SPATTN_BENCH_GRID_H
#define SPATTN_BENCH_GRID_H

typedef enum bench_mode {
    BM_QUICK,   /* seconds: CI smoke run, every runner once on a small problem */
    BM_DEFAULT, /* about ten minutes on two cores: the report's grid */
    BM_FULL     /* every pattern, level, length, dim and thread count: hours */
} bench_mode;

/* Registers the grid of `mode`; returns how many benchmarks. */
int bench_grid_register(bench_mode mode);

#endif
