# The fuzz targets, one source tests/fuzz/<name>.c and one seed corpus
# tests/fuzz/corpus/<name>/ each. Read by tests/fuzz/CMakeLists.txt (the libFuzzer builds) and
# tests/CMakeLists.txt (the corpus replays of every normal build).
set(SPATTN_FUZZ_TARGETS fuzz_mask_csr fuzz_mask_dense fuzz_mask_patterns fuzz_forward
  fuzz_backward)
