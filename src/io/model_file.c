/* The converted-model file: checks, reading and writing (model_file.h, docs/MODEL_FORMAT.md). */
#include "io/model_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sha256.h"
#include "io/atomic_file.h"
#include "nn/lowp.h"

#ifndef MC_VERSION
#define MC_VERSION "unknown"
#endif

const unsigned char mc_model_file_magic[8] = {0x89, 'M', 'C', 'M', '\r', '\n', 0x1a, '\n'};

/* header fields (byte offsets) */
enum {
    H_MAGIC = 0, H_VERSION = 8, H_HSIZE = 12, H_PROJECT = 16, H_PRECISION = 48, H_MR = 52, H_NR = 56, H_KG = 60,
    H_FEAT_NEED = 64, H_FEAT_MAKER = 72, H_HAS_ID = 80, H_ID = 88, H_CONFIG_OFF = 120, H_CONFIG_SIZE = 128,
    H_TABLE_OFF = 136, H_NTENSORS = 144, H_NPACKED = 148, H_PACKED_OFF = 152, H_DATA_OFF = 160, H_FILE_SIZE = 168,
    H_RESERVED = 176, H_CHECKSUM = 224
};
#define T_ENTRY 128 /* name[72] dtype ndim shape[4] offset size */
#define P_ENTRY 48  /* src q scale qsum src_offset M K Mp Kp order reserved */
#define NONE 0xffffffffu

int mc_model_file_sniff(const void *buf, size_t len) {
    return len >= sizeof mc_model_file_magic && !memcmp(buf, mc_model_file_magic, sizeof mc_model_file_magic);
}

int mc_model_file_is(const char *path) {
    unsigned char b[sizeof mc_model_file_magic];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    return n == (ssize_t)sizeof b && mc_model_file_sniff(b, sizeof b);
}

size_t mc_mf_dtype_size(mc_mf_dtype d) {
    static const size_t sz[MC_MF_DTYPES] = {4, 2, 1, 4};
    return (unsigned)d < MC_MF_DTYPES ? sz[d] : 0;
}

const char *mc_model_file_project_version(void) { return MC_VERSION; }

uint64_t mc_mf_cpu_features(void) {
    uint64_t f = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) f |= MC_MF_FEAT_AVX2;
    if (__builtin_cpu_supports("fma")) f |= MC_MF_FEAT_FMA;
    if (__builtin_cpu_supports("avx512f")) f |= MC_MF_FEAT_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) f |= MC_MF_FEAT_AVX512BW;
    if (__builtin_cpu_supports("avx512vl")) f |= MC_MF_FEAT_AVX512VL;
    if (__builtin_cpu_supports("avx512bf16")) f |= MC_MF_FEAT_AVX512BF16;
    if (__builtin_cpu_supports("avx512vnni")) f |= MC_MF_FEAT_AVX512VNNI;
#endif
    return f;
}

static const char *const feat_names[] = {"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512bf16", "avx512vnni"};

static uint32_t rd32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t rd64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static void wr32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* SHA-256 of the header before its checksum field and of everything from the config to the data */
static void checksum(const unsigned char *hdr, const unsigned char *meta, size_t meta_len, uint8_t out[32]) {
    mc_sha256 h;
    mc_sha256_init(&h);
    mc_sha256_update(&h, hdr, H_CHECKSUM);
    mc_sha256_update(&h, meta, meta_len);
    mc_sha256_final(&h, out);
}

void mc_model_file_close(mc_model_file *f) {
    if (!f) return;
    if (f->map && f->map_len) munmap(f->map, f->map_len);
    free(f->path);
    free(f->tensors);
    free(f->packed);
    memset(f, 0, sizeof *f);
}

static int close_failed(mc_model_file *f, int code) {
    mc_model_file_close(f);
    return code;
}
/* the failing check: one line naming the file (formatted before f is released) */
#define BAD(...) return close_failed(f, mc_fail(e, MC_E_FORMAT, __VA_ARGS__))

static int parse(mc_model_file *f, const unsigned char *b, size_t len, const char *n, mc_err *e) {
    if (len < MC_MODEL_FILE_HEADER || !mc_model_file_sniff(b, len)) {
        if (mc_model_file_sniff(b, len)) BAD("%s: truncated converted model (%zu bytes, the header alone is %d)", n, len,
                                             MC_MODEL_FILE_HEADER);
        BAD("%s: not a converted model (no mobileclip convert magic)", n);
    }
    uint32_t version = rd32(b + H_VERSION);
    if (version != MC_MODEL_FILE_VERSION)
        BAD("%s: converted-model format version %u, this build reads version %d (re-run mobileclip convert)", n,
            version, MC_MODEL_FILE_VERSION);
    if (rd32(b + H_HSIZE) != MC_MODEL_FILE_HEADER) BAD("%s: header size %u, expected %d", n, rd32(b + H_HSIZE), MC_MODEL_FILE_HEADER);
    uint64_t fsize = rd64(b + H_FILE_SIZE);
    if (fsize != len)
        BAD("%s: %s converted model: the header says %llu bytes, the file has %zu", n, len < fsize ? "truncated" : "corrupt",
            (unsigned long long)fsize, len);
    uint64_t coff = rd64(b + H_CONFIG_OFF), csize = rd64(b + H_CONFIG_SIZE), toff = rd64(b + H_TABLE_OFF);
    uint64_t poff = rd64(b + H_PACKED_OFF), doff = rd64(b + H_DATA_OFF);
    uint32_t nt = rd32(b + H_NTENSORS), np = rd32(b + H_NPACKED);
    if (coff != MC_MODEL_FILE_HEADER || csize == 0 || csize > MC_MODEL_FILE_MAX_CONFIG || nt == 0 ||
        nt > MC_MODEL_FILE_MAX_TENSORS || np > nt || toff != align_up(coff + csize, 8) ||
        poff != toff + (uint64_t)nt * T_ENTRY || doff != align_up(poff + (uint64_t)np * P_ENTRY, MC_MODEL_FILE_ALIGN) ||
        doff > len)
        BAD("%s: corrupt converted model (inconsistent section offsets or counts)", n);
    uint8_t sum[32];
    checksum(b, b + coff, (size_t)(doff - coff), sum);
    if (memcmp(sum, b + H_CHECKSUM, 32)) BAD("%s: corrupt converted model (header checksum mismatch)", n);
    for (int i = H_RESERVED; i < H_CHECKSUM; i++)
        if (b[i]) BAD("%s: corrupt converted model (reserved header bytes set)", n);
    /* the header is intact: now what it says */
    memcpy(f->project_version, b + H_PROJECT, sizeof f->project_version);
    if (f->project_version[sizeof f->project_version - 1]) BAD("%s: corrupt converted model (project version)", n);
    if (strcmp(f->project_version, MC_VERSION))
        BAD("%s: converted by mobileclip %s, this is %s (the plan may differ: re-run mobileclip convert)", n,
            f->project_version, MC_VERSION);
    uint32_t prec = rd32(b + H_PRECISION);
    if (prec >= MC_PREC_COUNT) BAD("%s: unknown precision %u", n, prec);
    f->precision = (int)prec;
    f->lp_mr = (int)rd32(b + H_MR), f->lp_nr = (int)rd32(b + H_NR), f->lp_kg = (int)rd32(b + H_KG);
    if (f->lp_mr != MC_LP_MR || f->lp_nr != MC_LP_NR || f->lp_kg != MC_LP_KG)
        BAD("%s: packed for %dx%d tiles with depth granule %d, this build packs %dx%d / %d (re-run mobileclip convert)",
            n, f->lp_mr, f->lp_nr, f->lp_kg, MC_LP_MR, MC_LP_NR, MC_LP_KG);
    f->features_needed = rd64(b + H_FEAT_NEED);
    f->features_maker = rd64(b + H_FEAT_MAKER);
    if (f->features_needed & ~(uint64_t)MC_MF_FEAT_KNOWN)
        BAD("%s: needs CPU features unknown to this build (bits 0x%llx)", n,
            (unsigned long long)(f->features_needed & ~(uint64_t)MC_MF_FEAT_KNOWN));
    uint64_t missing = f->features_needed & ~mc_mf_cpu_features();
    for (int i = 0; missing && i < (int)(sizeof feat_names / sizeof *feat_names); i++)
        if (missing & (1u << i)) BAD("%s: made for CPUs with %s, which this CPU lacks", n, feat_names[i]);
    uint32_t has_id = rd32(b + H_HAS_ID);
    if (has_id > 1) BAD("%s: corrupt converted model (model identity flag %u)", n, has_id);
    f->has_model_id = (int)has_id;
    memcpy(f->model_id, b + H_ID, 32);
    f->config = (const char *)b + coff;
    f->config_len = (size_t)csize;

    f->tensors = calloc(nt, sizeof *f->tensors);
    f->packed = np ? calloc(np, sizeof *f->packed) : NULL;
    if (!f->tensors || (np && !f->packed)) {
        mc_model_file_close(f);
        return mc_fail(e, MC_E_NOMEM, "%s: out of memory for %u tensor entries", n, nt);
    }
    f->n_tensors = (int)nt;
    f->n_packed = (int)np;
    for (uint32_t i = 0; i < nt; i++) {
        const unsigned char *t = b + toff + (uint64_t)i * T_ENTRY;
        mc_mf_tensor *x = &f->tensors[i];
        memcpy(x->name, t, MC_MODEL_FILE_NAME);
        if (!x->name[0] || memchr(x->name, 0, MC_MODEL_FILE_NAME) == NULL)
            BAD("%s: corrupt converted model (tensor %u: name not terminated)", n, i);
        uint32_t dt = rd32(t + 72), nd = rd32(t + 76);
        if (dt >= MC_MF_DTYPES || nd > 4)
            BAD("%s: tensor '%s': unknown dtype %u or %u dimensions", n, x->name, dt, nd);
        x->dtype = (mc_mf_dtype)dt;
        x->ndim = (int)nd;
        uint64_t numel = 1;
        for (int d = 0; d < 4; d++) {
            x->shape[d] = (int64_t)rd64(t + 80 + 8 * d);
            if (d >= x->ndim ? x->shape[d] != 0 : x->shape[d] < 0 || x->shape[d] > ((int64_t)1 << 40))
                BAD("%s: tensor '%s': implausible shape", n, x->name);
            if (d < x->ndim) {
                if (x->shape[d] && numel > ((uint64_t)1 << 40) / (uint64_t)x->shape[d])
                    BAD("%s: tensor '%s': implausible shape", n, x->name);
                numel *= (uint64_t)x->shape[d];
            }
        }
        x->offset = rd64(t + 112);
        x->size = rd64(t + 120);
        if (x->size != numel * mc_mf_dtype_size(x->dtype))
            BAD("%s: tensor '%s': %llu bytes recorded, its shape needs %llu", n, x->name, (unsigned long long)x->size,
                (unsigned long long)(numel * mc_mf_dtype_size(x->dtype)));
        if (x->offset % MC_MODEL_FILE_ALIGN || x->offset < doff || x->offset > len || x->size > len - x->offset)
            BAD("%s: tensor '%s': data at %llu (+%llu bytes) outside the data section or not 64-byte aligned", n,
                x->name, (unsigned long long)x->offset, (unsigned long long)x->size);
        x->data = b + x->offset;
    }
    const unsigned char *pt = b + poff;
    for (uint32_t i = 0; i < np; i++, pt += P_ENTRY) {
        mc_mf_packed *p = &f->packed[i];
        uint32_t ix[4] = {rd32(pt), rd32(pt + 4), rd32(pt + 8), rd32(pt + 12)};
        for (int k = 0; k < 4; k++)
            if (ix[k] != NONE && ix[k] >= nt) BAD("%s: packed weight %u: tensor index %u out of range", n, i, ix[k]);
        p->src = ix[0] == NONE ? -1 : (int)ix[0];
        p->q = ix[1] == NONE ? -1 : (int)ix[1];
        p->scale = ix[2] == NONE ? -1 : (int)ix[2];
        p->qsum = ix[3] == NONE ? -1 : (int)ix[3];
        p->src_offset = rd64(pt + 16);
        int32_t v[5];
        memcpy(v, pt + 24, sizeof v);
        p->M = v[0], p->K = v[1], p->Mp = v[2], p->Kp = v[3], p->order = v[4];
        int int8 = f->precision == MC_PREC_INT8;
        if (f->precision == MC_PREC_F32 || p->src < 0 || p->q < 0 || (int8 ? p->scale < 0 || p->qsum < 0 : p->scale >= 0 || p->qsum >= 0))
            BAD("%s: packed weight %u: tensors missing or not of a %s plan", n, i, mc_precision_name(f->precision));
        if (p->M < 1 || p->K < 1 || (int8 && p->K > 65536) || p->Mp != (p->M + MC_LP_MR - 1) / MC_LP_MR * MC_LP_MR ||
            p->Kp != (p->K + MC_LP_KG - 1) / MC_LP_KG * MC_LP_KG || p->order < 0)
            BAD("%s: packed weight %u: inconsistent sizes %d x %d (padded %d x %d)", n, i, p->M, p->K, p->Mp, p->Kp);
        const mc_mf_tensor *s = &f->tensors[p->src], *q = &f->tensors[p->q];
        if (s->dtype != MC_MF_F32 || p->src_offset > s->size / 4 || (uint64_t)p->M * p->K > s->size / 4 - p->src_offset)
            BAD("%s: packed weight %u: rows outside its f32 tensor '%s'", n, i, s->name);
        if (q->dtype != (int8 ? MC_MF_I8 : MC_MF_BF16) || q->ndim != 2 || q->shape[0] != p->Mp || q->shape[1] != p->Kp)
            BAD("%s: packed weight %u: tensor '%s' is not [%d, %d] %s", n, i, q->name, p->Mp, p->Kp, int8 ? "i8" : "bf16");
        if (int8) {
            const mc_mf_tensor *sc = &f->tensors[p->scale], *qs = &f->tensors[p->qsum];
            if (sc->dtype != MC_MF_F32 || sc->ndim != 1 || sc->shape[0] != p->Mp || qs->dtype != MC_MF_I32 ||
                qs->ndim != 1 || qs->shape[0] != p->Mp)
                BAD("%s: packed weight %u: scales or row sums are not [%d]", n, i, p->Mp);
        }
    }
    return 0;
}

int mc_model_file_parse(mc_model_file *f, const void *buf, size_t len, const char *name, mc_err *e) {
    memset(f, 0, sizeof *f);
    return parse(f, buf, len, name ? name : "model", e);
}

int mc_model_file_open(mc_model_file *f, const char *path, mc_err *e) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mc_fail(e, MC_E_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return mc_fail(e, MC_E_IO, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (len && map == MAP_FAILED) return mc_fail(e, MC_E_IO, "%s: cannot map: %s", path, strerror(errno));
    static const unsigned char empty[1] = {0};
    int r = parse(f, map ? map : empty, len, path, e);
    if (r) {
        if (map) munmap(map, len);
        return r;
    }
    f->map = map;
    f->map_len = len;
    if (!(f->path = strdup(path))) {
        mc_model_file_close(f);
        return mc_fail(e, MC_E_NOMEM, "out of memory");
    }
    return 0;
}

/* ---------------------------------------------------------------- writing */

static int put(mc_atomic_file *af, const void *p, size_t n) { return n && fwrite(p, 1, n, af->f) != n ? -1 : 0; }

static int pad_to(mc_atomic_file *af, uint64_t *at, uint64_t to) {
    static const unsigned char zero[MC_MODEL_FILE_ALIGN];
    while (*at < to) {
        size_t k = to - *at > sizeof zero ? sizeof zero : (size_t)(to - *at);
        if (put(af, zero, k)) return -1;
        *at += k;
    }
    return 0;
}

int mc_model_file_write(const char *path, const mc_model_file_spec *s, mc_err *e) {
    if (s->n_tensors < 1 || s->n_tensors > MC_MODEL_FILE_MAX_TENSORS || s->n_packed < 0 || s->n_packed > s->n_tensors ||
        !s->config_len || s->config_len > MC_MODEL_FILE_MAX_CONFIG)
        return mc_fail(e, MC_E_ARG, "%s: %d tensors, %d packed, %zu bytes of configuration", path, s->n_tensors,
                       s->n_packed, s->config_len);
    uint64_t coff = MC_MODEL_FILE_HEADER, toff = align_up(coff + s->config_len, 8);
    uint64_t poff = toff + (uint64_t)s->n_tensors * T_ENTRY, doff = align_up(poff + (uint64_t)s->n_packed * P_ENTRY, 64);
    uint64_t at = doff;
    for (int i = 0; i < s->n_tensors; i++) {
        mc_mf_tensor *t = &s->tensors[i];
        t->offset = at;
        at = align_up(at + t->size, MC_MODEL_FILE_ALIGN);
    }
    uint64_t fsize = s->n_tensors ? s->tensors[s->n_tensors - 1].offset + s->tensors[s->n_tensors - 1].size : doff;
    /* header + config + tables in memory (a few hundred KB), for the checksum */
    size_t meta_len = (size_t)(doff - coff);
    unsigned char hdr[MC_MODEL_FILE_HEADER] = {0}, *meta = calloc(1, meta_len);
    if (!meta) return mc_fail(e, MC_E_NOMEM, "%s: out of memory", path);
    memcpy(hdr + H_MAGIC, mc_model_file_magic, 8);
    wr32(hdr + H_VERSION, MC_MODEL_FILE_VERSION);
    wr32(hdr + H_HSIZE, MC_MODEL_FILE_HEADER);
    snprintf((char *)hdr + H_PROJECT, 32, "%s", MC_VERSION);
    wr32(hdr + H_PRECISION, (uint32_t)s->precision);
    wr32(hdr + H_MR, MC_LP_MR);
    wr32(hdr + H_NR, MC_LP_NR);
    wr32(hdr + H_KG, MC_LP_KG);
    wr64(hdr + H_FEAT_NEED, s->features_needed);
    wr64(hdr + H_FEAT_MAKER, mc_mf_cpu_features());
    wr32(hdr + H_HAS_ID, s->model_id ? 1 : 0);
    if (s->model_id) memcpy(hdr + H_ID, s->model_id, 32);
    wr64(hdr + H_CONFIG_OFF, coff);
    wr64(hdr + H_CONFIG_SIZE, s->config_len);
    wr64(hdr + H_TABLE_OFF, toff);
    wr32(hdr + H_NTENSORS, (uint32_t)s->n_tensors);
    wr32(hdr + H_NPACKED, (uint32_t)s->n_packed);
    wr64(hdr + H_PACKED_OFF, poff);
    wr64(hdr + H_DATA_OFF, doff);
    wr64(hdr + H_FILE_SIZE, fsize);
    memcpy(meta, s->config, s->config_len);
    for (int i = 0; i < s->n_tensors; i++) {
        const mc_mf_tensor *t = &s->tensors[i];
        unsigned char *q = meta + (toff - coff) + (size_t)i * T_ENTRY;
        size_t nl = strnlen(t->name, MC_MODEL_FILE_NAME);
        if (!nl || nl >= MC_MODEL_FILE_NAME) {
            free(meta);
            return mc_fail(e, MC_E_ARG, "%s: tensor name '%.*s' is empty or too long", path, MC_MODEL_FILE_NAME, t->name);
        }
        memcpy(q, t->name, nl);
        wr32(q + 72, (uint32_t)t->dtype);
        wr32(q + 76, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim && d < 4; d++) wr64(q + 80 + 8 * d, (uint64_t)t->shape[d]);
        wr64(q + 112, t->offset);
        wr64(q + 120, t->size);
    }
    for (int i = 0; i < s->n_packed; i++) {
        const mc_mf_packed *p = &s->packed[i];
        unsigned char *q = meta + (poff - coff) + (size_t)i * P_ENTRY;
        int ix[4] = {p->src, p->q, p->scale, p->qsum};
        for (int k = 0; k < 4; k++) wr32(q + 4 * k, ix[k] < 0 ? NONE : (uint32_t)ix[k]);
        wr64(q + 16, p->src_offset);
        int32_t v[5] = {p->M, p->K, p->Mp, p->Kp, p->order};
        memcpy(q + 24, v, sizeof v);
    }
    checksum(hdr, meta, meta_len, hdr + H_CHECKSUM);
    mc_atomic_file af;
    int r = mc_atomic_open(&af, path, e);
    if (r) {
        free(meta);
        return r;
    }
    at = doff;
    int bad = put(&af, hdr, sizeof hdr) || put(&af, meta, meta_len);
    free(meta);
    for (int i = 0; !bad && i < s->n_tensors; i++)
        bad = pad_to(&af, &at, s->tensors[i].offset) || put(&af, s->tensors[i].data, (size_t)s->tensors[i].size) ||
              ((at += s->tensors[i].size), 0);
    if (bad) {
        mc_atomic_abort(&af);
        return mc_fail(e, MC_E_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return mc_atomic_commit(&af, e);
}
