/* libFuzzer target: checkpoint readers (zip, pickle, torch rebuild, legacy, safetensors).
 *
 * Input: one mode byte, then the data.
 *   bit 0: skip CRC checks of stored zip members (lets mutations reach the pickle)
 *   bit 1: keep_paths (no unwrapping)
 *   bit 2: collect scalars through the callback
 *   bit 3: the data is a raw pickle: it is wrapped here into a zip as archive/data.pkl next
 *          to storages archive/data/0..3 (64 bytes each), so the pickle interpreter and the
 *          tensor rebuilder see well-formed archives around arbitrary pickles
 * Otherwise the data is sniffed and routed as mc_checkpoint_parse does (torch zip or
 * legacy through mc_torch_parse_ex, safetensors through mc_safetensors_parse).
 *
 * Build: CC=clang cmake -S . -B build-fuzz -DMC_FUZZ=ON && cmake --build build-fuzz --target fuzz_checkpoint
 * Run:   ./build-fuzz/fuzz_checkpoint -dict=fuzz/checkpoint.dict CORPUS_DIR
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"

static void on_scalar(void *ctx, const char *const *path, int depth, const mc_torch_value *v) {
    size_t *sum = ctx;
    for (int i = 0; i < depth; i++) *sum += strlen(path[i]);
    if (v->kind == MC_TORCH_STR) *sum += v->len ? (unsigned char)v->s[v->len - 1] : 0;
}

/* Touches every element so that out-of-bounds views would show up under ASan. */
static double touch(const mc_tensor_map *m) {
    double s = 0;
    for (int i = 0; i < m->count; i++) {
        const mc_tensor *t = &m->items[i].t;
        int64_t n = mc_tensor_numel(t);
        for (int64_t k = 0; k < n && k < 4096; k++) s += mc_tensor_get_f64(t, k);
    }
    return s;
}

static void put(unsigned char **p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) *(*p)++ = (unsigned char)(v >> (8 * i));
}

/* A stored zip: archive/data.pkl = pickle, archive/data/0..3 = 64 bytes each. */
static unsigned char *wrap_pickle(const uint8_t *pk, size_t n, size_t *out_len) {
    static const char *names[5] = {"archive/data.pkl", "archive/data/0", "archive/data/1", "archive/data/2", "archive/data/3"};
    unsigned char storage[64];
    for (int i = 0; i < 64; i++) storage[i] = (unsigned char)(i * 37 + 11);
    size_t total = n + 4 * 64 + 5 * (30 + 46 + 2 * 16) + 22;
    unsigned char *z = malloc(total), *p = z;
    if (!z) return NULL;
    uint64_t offs[5];
    uint32_t crcs[5];
    size_t sizes[5];
    for (int k = 0; k < 5; k++) {
        const unsigned char *d = k ? storage : pk;
        size_t len = k ? 64 : n;
        size_t nlen = strlen(names[k]);
        offs[k] = (uint64_t)(p - z);
        crcs[k] = (uint32_t)crc32(0, d, (uInt)len);
        sizes[k] = len;
        put(&p, 0x04034b50u, 4); put(&p, 20, 2); put(&p, 0, 2); put(&p, 0, 2); put(&p, 0, 4);
        put(&p, crcs[k], 4); put(&p, len, 4); put(&p, len, 4); put(&p, nlen, 2); put(&p, 0, 2);
        memcpy(p, names[k], nlen); p += nlen;
        if (len) memcpy(p, d, len);
        p += len;
    }
    size_t cd = (size_t)(p - z);
    for (int k = 0; k < 5; k++) {
        size_t nlen = strlen(names[k]);
        put(&p, 0x02014b50u, 4); put(&p, 20, 2); put(&p, 20, 2); put(&p, 0, 2); put(&p, 0, 2); put(&p, 0, 4);
        put(&p, crcs[k], 4); put(&p, sizes[k], 4); put(&p, sizes[k], 4); put(&p, nlen, 2); put(&p, 0, 2);
        put(&p, 0, 2); put(&p, 0, 2); put(&p, 0, 2); put(&p, 0, 4); put(&p, offs[k], 4);
        memcpy(p, names[k], nlen); p += nlen;
    }
    size_t cd_size = (size_t)(p - z) - cd;
    put(&p, 0x06054b50u, 4); put(&p, 0, 4); put(&p, 5, 2); put(&p, 5, 2); put(&p, cd_size, 4); put(&p, cd, 4);
    put(&p, 0, 2);
    *out_len = (size_t)(p - z);
    return z;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned mode = data[0];
    data++;
    size--;
    size_t sum = 0;
    mc_torch_options opt = {.skip_crc = mode & 1, .keep_paths = (mode >> 1) & 1,
                            .on_scalar = (mode & 4) ? on_scalar : NULL, .ctx = &sum};
    mc_tensor_map m;
    mc_tensor_map_init(&m);
    mc_err e = {0};
    /* a private copy so that ASan sees reads past the end */
    size_t len = size;
    unsigned char *buf;
    if (mode & 8) {
        buf = wrap_pickle(data, size, &len);
        if (!buf) return 0;
    } else {
        buf = malloc(size ? size : 1);
        if (!buf) return 0;
        if (size) memcpy(buf, data, size);
    }
    int r;
    switch (mc_checkpoint_sniff(buf, len)) {
    case MC_CKPT_TORCH_ZIP:
    case MC_CKPT_TORCH_LEGACY:
        r = mc_torch_parse_ex(buf, len, "fuzz.pt", &opt, &m, &e);
        break;
    case MC_CKPT_SAFETENSORS:
        r = mc_safetensors_parse(buf, len, "fuzz.safetensors", &m, NULL, &e);
        break;
    default:
        r = mc_checkpoint_parse(buf, len, "fuzz.bin", &m, &e);
        break;
    }
    if (r == 0) {
        volatile double s = touch(&m);
        (void)s;
    } else if (!e.msg[0]) {
        abort(); /* every failure must carry a reason */
    }
    mc_tensor_map_free(&m);
    free(buf);
    return 0;
}
