/* Worker pool with spin-then-sleep waiting (see parallel.h).
 *
 * Shared state of one parallel call ("region"), published by the caller:
 *   next  = (generation << 32) | next chunk index; workers claim chunks by CAS on it, so a
 *           worker that saw an older generation can never claim a chunk of a newer region;
 *           between regions the index is set to CLOSED before the fields change;
 *   gen   = generation, the futex word idle workers sleep on;
 *   done  = chunks finished, the futex word the caller sleeps on. */
#include "core/parallel.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <omp.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
static void futex_wait(_Atomic uint32_t *w, uint32_t v) {
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}
static void futex_wake(_Atomic uint32_t *w) { syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0); }
#else
#include <sched.h>
static void futex_wait(_Atomic uint32_t *w, uint32_t v) {
    (void)w; (void)v;
    sched_yield();
}
static void futex_wake(_Atomic uint32_t *w) { (void)w; }
#endif

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define MAX_WORKERS 255
#define CLOSED 0xFFFFFFFFu

static struct {
    pthread_mutex_t lock; /* held by the caller of a region */
    int nworkers;
    _Atomic uint64_t next;
    _Atomic uint32_t gen, done;
    _Atomic int sleepers, caller_sleeping;
    /* region fields, valid while next's index is not CLOSED */
    mc_range_fn fn;
    void *arg;
    int n, grain, nchunks, active; /* active: workers allowed to take part */
    long spin_ns;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .next = CLOSED};

static _Thread_local int tls_threads; /* 0: default */
static _Thread_local int tls_in_task;

void mc_threads_set(int n) { tls_threads = n > 0 ? n : 0; }

int mc_threads_get(void) {
    int n = tls_threads > 0 ? tls_threads : omp_get_max_threads();
    return n < 1 ? 1 : n > MAX_WORKERS + 1 ? MAX_WORKERS + 1 : n;
}

int mc_parallel_grain(int n, int per_thread) {
    int t = mc_threads_get() * (per_thread > 0 ? per_thread : 1);
    int g = (n + t - 1) / t;
    return g < 1 ? 1 : g;
}

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

/* Claims and runs chunks of generation g until none is left; returns how many it ran. */
static int run_chunks(uint32_t g) {
    int ran = 0;
    for (;;) {
        uint64_t cur = atomic_load_explicit(&pool.next, memory_order_acquire);
        uint32_t idx = (uint32_t)cur;
        if ((uint32_t)(cur >> 32) != g || idx == CLOSED || idx >= (uint32_t)pool.nchunks) return ran;
        if (!atomic_compare_exchange_weak_explicit(&pool.next, &cur, cur + 1, memory_order_acq_rel,
                                                   memory_order_relaxed))
            continue;
        int b = (int)idx * pool.grain, e = b + pool.grain < pool.n ? b + pool.grain : pool.n;
        pool.fn(pool.arg, b, e);
        ran++;
        if (atomic_fetch_add(&pool.done, 1) + 1 == (uint32_t)pool.nchunks && atomic_load(&pool.caller_sleeping))
            futex_wake(&pool.done);
    }
}

/* Spins up to pool.spin_ns for *w to differ from v; returns the last value seen. */
static uint32_t spin_while(_Atomic uint32_t *w, uint32_t v) {
    uint32_t x = atomic_load_explicit(w, memory_order_acquire);
    if (x != v) return x;
    long t0 = now_ns();
    for (int i = 1;; i++) {
        cpu_relax();
        x = atomic_load_explicit(w, memory_order_acquire);
        if (x != v || ((i & 63) == 0 && now_ns() - t0 > pool.spin_ns)) return x;
    }
}

static void *worker_main(void *p) {
    int id = (int)(intptr_t)p;
    tls_in_task = 1;
    uint32_t seen = atomic_load(&pool.gen);
    for (;;) {
        uint32_t g = spin_while(&pool.gen, seen);
        if (g == seen) {
            atomic_fetch_add(&pool.sleepers, 1);
            futex_wait(&pool.gen, seen);
            atomic_fetch_sub(&pool.sleepers, 1);
            continue;
        }
        seen = g;
        if (id < pool.active) run_chunks(g);
    }
    return NULL;
}

/* A forked child has none of the parent's workers: it starts a pool of its own. */
static void reset_in_child(void) {
    pthread_mutex_init(&pool.lock, NULL);
    pool.nworkers = 0;
    atomic_store(&pool.sleepers, 0);
    atomic_store(&pool.caller_sleeping, 0);
}

static void grow(int want) {
    static int atfork_done;
    if (!atfork_done) atfork_done = !pthread_atfork(NULL, NULL, reset_in_child);
    while (pool.nworkers < want) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&t, &a, worker_main, (void *)(intptr_t)pool.nworkers);
        pthread_attr_destroy(&a);
        if (r) break; /* fewer workers: the caller does more */
        pool.nworkers++;
    }
}

static void run_serial(int n, int grain, mc_range_fn fn, void *arg) {
    for (int b = 0; b < n; b += grain) fn(arg, b, b + grain < n ? b + grain : n);
}

void mc_parallel_for(int n, int grain, mc_range_fn fn, void *arg) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int nchunks = (n + grain - 1) / grain, threads = mc_threads_get();
    if (threads > nchunks) threads = nchunks;
    if (threads <= 1 || tls_in_task || pthread_mutex_trylock(&pool.lock)) {
        run_serial(n, grain, fn, arg);
        return;
    }
    if (!pool.spin_ns) {
        const char *s = getenv("MC_SPIN_US");
        long us = s && *s ? atol(s) : 50;
        pool.spin_ns = (us < 0 ? 0 : us) * 1000L + 1;
    }
    grow(threads - 1);
    pool.fn = fn;
    pool.arg = arg;
    pool.n = n;
    pool.grain = grain;
    pool.nchunks = nchunks;
    pool.active = threads - 1;
    atomic_store(&pool.done, 0);
    uint32_t g = atomic_load(&pool.gen) + 1;
    atomic_store_explicit(&pool.next, (uint64_t)g << 32, memory_order_release);
    atomic_store(&pool.gen, g);
    if (atomic_load(&pool.sleepers)) futex_wake(&pool.gen);

    tls_in_task = 1;
    run_chunks(g);
    tls_in_task = 0;
    for (;;) {
        uint32_t d = atomic_load(&pool.done);
        if (d == (uint32_t)nchunks) break;
        d = spin_while(&pool.done, d); /* chunks claimed by workers still running */
        if (d == (uint32_t)nchunks) break;
        atomic_store(&pool.caller_sleeping, 1);
        d = atomic_load(&pool.done);
        if (d != (uint32_t)nchunks) futex_wait(&pool.done, d);
        atomic_store(&pool.caller_sleeping, 0);
    }
    atomic_store_explicit(&pool.next, ((uint64_t)g << 32) | CLOSED, memory_order_release);
    pthread_mutex_unlock(&pool.lock);
}

typedef struct span_job {
    mc_span_fn fn;
    void *arg;
    size_t n, span;
} span_job;

static void span_range(void *arg, int i0, int i1) {
    span_job *j = arg;
    size_t b = (size_t)i0 * j->span, e = (size_t)i1 * j->span;
    j->fn(j->arg, b, e < j->n ? e : j->n);
}

void mc_parallel_span(size_t n, size_t min_block, mc_span_fn fn, void *arg) {
    if (!n) return;
    if (min_block < 1) min_block = 1;
    size_t want = (size_t)mc_threads_get() * 4, span = (n + want - 1) / want;
    if (span < min_block) span = min_block;
    size_t spans = (n + span - 1) / span;
    if (spans <= 1 || spans > INT_MAX) {
        fn(arg, 0, n);
        return;
    }
    span_job j = {fn, arg, n, span};
    mc_parallel_for((int)spans, 1, span_range, &j);
}

enum { SUM_BLOCKS = 64 };

typedef struct sum_job {
    mc_sum_fn fn;
    void *arg;
    size_t n, block;
    double part[SUM_BLOCKS];
} sum_job;

static void sum_range(void *arg, int i0, int i1) {
    sum_job *j = arg;
    for (int i = i0; i < i1; i++) {
        size_t b = (size_t)i * j->block, e = b + j->block < j->n ? b + j->block : j->n;
        j->part[i] = j->fn(j->arg, b, e);
    }
}

double mc_parallel_sum(size_t n, size_t min_block, mc_sum_fn fn, void *arg) {
    if (!n) return 0;
    if (min_block < 1) min_block = 1;
    size_t blocks = (n + min_block - 1) / min_block;
    if (blocks > SUM_BLOCKS) blocks = SUM_BLOCKS;
    sum_job j = {.fn = fn, .arg = arg, .n = n, .block = (n + blocks - 1) / blocks};
    blocks = (n + j.block - 1) / j.block;
    mc_parallel_for((int)blocks, 1, sum_range, &j);
    double total = 0;
    for (size_t i = 0; i < blocks; i++) total += j.part[i];
    return total;
}

typedef struct items_job {
    mc_item_fn fn;
    void *arg;
    mc_err *e;
    _Atomic int failed;
} items_job;

static void items_range(void *arg, int i0, int i1) {
    items_job *j = arg;
    for (int i = i0; i < i1; i++) {
        mc_err e = {0};
        int r = j->fn(j->arg, i, &e);
        if (r && !atomic_exchange(&j->failed, 1)) {
            *j->e = e;
            j->e->code = r;
        }
    }
}

int mc_parallel_items(int n, mc_item_fn fn, void *arg, mc_err *e) {
    if (n < mc_threads_get() || mc_threads_get() <= 1 || tls_in_task) {
        for (int i = 0; i < n; i++) {
            int r = fn(arg, i, e);
            if (r) return r;
        }
        return 0;
    }
    mc_err first = {0};
    items_job j = {fn, arg, &first, 0};
    mc_parallel_for(n, 1, items_range, &j);
    if (!atomic_load(&j.failed)) return 0;
    if (e) *e = first;
    return first.code;
}

/* ---------------------------------------------------------------- per-thread scratch */

typedef struct scratch {
    void *p[MC_SCRATCH_SLOTS];
    size_t cap[MC_SCRATCH_SLOTS];
} scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_free(void *v) {
    scratch *s = v;
    for (int i = 0; i < MC_SCRATCH_SLOTS; i++) free(s->p[i]);
    free(s);
}

static void scratch_key_make(void) { scratch_key_ok = !pthread_key_create(&scratch_key, scratch_free); }

void *mc_thread_scratch(int slot, size_t bytes) {
    if (slot < 0 || slot >= MC_SCRATCH_SLOTS) return NULL;
    pthread_once(&scratch_once, scratch_key_make);
    if (!scratch_key_ok) return NULL;
    scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        if (!(s = calloc(1, sizeof *s))) return NULL;
        if (pthread_setspecific(scratch_key, s)) {
            free(s);
            return NULL;
        }
    }
    if (s->cap[slot] < bytes) {
        size_t cap = (bytes + 4095) / 4096 * 4096; /* a multiple of the alignment, as C11 asks */
        void *p = aligned_alloc(64, cap);
        if (!p) return NULL;
        free(s->p[slot]);
        s->p[slot] = p;
        s->cap[slot] = cap;
    }
    return s->p[slot];
}
