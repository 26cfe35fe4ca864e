/* parallel.h - the library's worker threads: a small pool that sleeps when idle.
 *
 * Why not OpenMP: libgomp's waiting threads spin (OMP_WAIT_POLICY can only be set in the
 * environment before the program starts); on a machine where another job holds a core, a
 * spinning worker keeps its core busy while the thread that has work waits for a time slice,
 * and a batch-1 image took 25x longer with 2 threads than with 1. Here a waiting thread spins
 * only briefly (MC_SPIN_US, default 50 us), then sleeps on a futex, so the scheduler can move
 * a preempted worker onto the idle core; work is handed out in chunks claimed one at a time,
 * so a thread on a slow (shared) core simply takes fewer chunks.
 *
 * One process-wide pool (like the CPU it runs on), created on first use. The thread count of
 * a call is the calling thread's setting (mc_threads_set; default: OMP_NUM_THREADS or the
 * number of processors). Calls from inside a task, or while another thread is using the
 * pool, run serially in the caller. Results never depend on which thread runs which chunk.
 */
#ifndef MC_CORE_PARALLEL_H
#define MC_CORE_PARALLEL_H

#include <stddef.h>

#include "core/error.h"

/* fn(arg, begin, end) for consecutive ranges covering [0, n), `grain` items each (the last
 * may be shorter). Returns when all have run. */
typedef void (*mc_range_fn)(void *arg, int begin, int end);
void mc_parallel_for(int n, int grain, mc_range_fn fn, void *arg);

/* Threads used by mc_parallel_for calls from the calling thread (n <= 0: the default). */
void mc_threads_set(int n);
int mc_threads_get(void);

/* Grain that gives about `per_thread` chunks per thread for n items (at least 1). */
int mc_parallel_grain(int n, int per_thread);

/* Loops over whole tensors (elementwise layers, optimizer updates): fn(arg, begin, end) over
 * consecutive spans covering [0, n), about 4 per thread but none shorter than min_block items,
 * so a small tensor runs in the caller with no hand-off. Spans depend on the thread count:
 * use it where each item's result does not depend on which span holds it. */
typedef void (*mc_span_fn)(void *arg, size_t begin, size_t end);
void mc_parallel_span(size_t n, size_t min_block, mc_span_fn fn, void *arg);

/* Sum over [0, n) in an order fixed by n alone, whatever the thread count: [0, n) is cut into
 * at most 64 equal blocks of at least min_block items, fn(arg, begin, end) returns one block's
 * sum, and the block sums are added in block order (double). */
typedef double (*mc_sum_fn)(void *arg, size_t begin, size_t end);
double mc_parallel_sum(size_t n, size_t min_block, mc_sum_fn fn, void *arg);

/* Independent items (e.g. the images of a batch) spread over the threads, one whole item per
 * task, each computed serially inside: no synchronisation inside an item, so small layers
 * cost nothing extra. fn(arg, i, e) returns 0 or an MC_E_* code with its reason in e.
 * Returns 0, or the code of a failed item with that item's reason in *e (the first to fail;
 * the others still run). With fewer items than threads, or one thread, the items run one
 * after the other in the caller, each on all the threads. */
typedef int (*mc_item_fn)(void *arg, int i, mc_err *e);
int mc_parallel_items(int n, mc_item_fn fn, void *arg, mc_err *e);

/* Per-thread scratch memory reused across calls (so kernels run inside tasks need no
 * allocation per call): at least `bytes`, 64-byte aligned, owned by the calling thread and
 * valid until its next call with the same slot (contents not kept when it grows); freed
 * when the thread exits. One slot per kind of kernel, MC_SCRATCH_SLOTS in all, so kernels
 * that never nest keep their buffers apart. NULL when it cannot be allocated. */
/* (MC_SCRATCH_LOWP: the packed activation of a low-precision GEMM, nn/lowp.c, taken by the calling
 * thread and shared by its tasks; MC_SCRATCH_LOWP_PACK: a task's copy of one activation panel) */
enum {
    MC_SCRATCH_GEMM,
    MC_SCRATCH_GEMM_B,
    MC_SCRATCH_GEMM_A,
    MC_SCRATCH_DEPTHWISE,
    MC_SCRATCH_ATTEND,
    MC_SCRATCH_LOWP,
    MC_SCRATCH_LOWP_PACK,
    MC_SCRATCH_SLOTS
};
void *mc_thread_scratch(int slot, size_t bytes);

#endif
