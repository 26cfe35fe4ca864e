/* param_arena.h - the parameter-store layout for tests: every float32 tensor of a map copied
 * into one arena (views repointed), with a gradient arena at the same offsets, so model
 * pointers bound from the map find their gradients through an mc_grad_map. */
#ifndef MC_TEST_PARAM_ARENA_H
#define MC_TEST_PARAM_ARENA_H

#include "core/tensor.h"
#include "models/train_tape.h"

/* Fills *g (data, zeroed grad owned by the map, n). Dies on failure. */
void mc_test_param_arena(mc_tensor_map *m, mc_grad_map *g);
/* The arena pointer of tensor `name` (dies if absent). */
float *mc_test_param(const mc_tensor_map *m, const char *name);

#endif
