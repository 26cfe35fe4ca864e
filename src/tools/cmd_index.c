/* mobileclip index / search: a persistent, incrementally updated embedding index of an image
 * collection (docs/INDEX_FORMAT.md) and exact nearest-neighbour queries over it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/parallel.h"
#include "core/sha256.h"
#include "core/tensor.h"
#include "eval/batch.h"
#include "index/index.h"
#include "index/search.h"
#include "io/mapped_file.h"
#include "io/walk.h"
#include "tools/cli.h"
#include "tools/cli_report.h"

static const char *index_help =
    "usage: mobileclip index --checkpoint FILE [--arch A | --config FILE] [--threads N] [--vocab V]\n"
    "                        [--training-form] [--precision P]\n"
    "                        (DIR | --image-list FILE | --image P)... (-o | --output) INDEX\n"
    "                        [--dtype f32|f16] [--batch N] [--progress] [--json]\n"
    "\n"
    "Embeds every image under the directories (recursive; images recognised by content) and in\n"
    "the lists into INDEX. If INDEX exists it is updated: images no longer among the inputs are\n"
    "dropped, new ones embedded, and files whose size and modification time (or, failing that,\n"
    "SHA-256 content hash) are unchanged keep their embedding. Files that cannot be decoded are\n"
    "skipped and counted. The file is written atomically; see docs/INDEX_FORMAT.md.\n"
    "\n"
    "options:\n" MC_CLI_MODEL_OPTS_HELP
    "  DIR                 directory of images (repeatable)\n"
    "  --image-list FILE   one image path per line (repeatable)\n"
    "  --image P           one image (repeatable)\n"
    "  --output INDEX      index file to create or update (required; -o INDEX)\n"
    "  --dtype T           f32 (default) or f16 storage of the embeddings\n"
    "  --batch N           images per model call (default 16)\n"
    "  --progress          progress on stderr even when it is not a terminal\n"
    "  --json              print the summary as one JSON object on stdout\n";

static const char *search_help =
    "usage: mobileclip search INDEX --checkpoint FILE [--arch A | --config FILE] [--threads N] [--vocab V]\n"
    "                         [--training-form] [--precision P] (--text \"query\" | --image FILE) [--top K]\n"
    "                         [--json]\n"
    "\n"
    "Ranks the indexed images by cosine similarity to the query (exact brute force). The\n"
    "checkpoint must be the model that built the index (its weights' SHA-256 is checked).\n"
    "\n"
    "options:\n" MC_CLI_MODEL_OPTS_HELP
    "  --text Q            text query\n"
    "  --image FILE        image query\n"
    "  --top K             results to print (default 10)\n"
    "  --json              {\"query\":Q,\"results\":[{\"rank\":1,\"path\":P,\"score\":s},...]}\n";

/* SHA-256 of a file's bytes. */
static int hash_file(const char *path, uint8_t out[32], mc_err *e) {
    void *addr;
    size_t len;
    int r = mc_map_file(path, &addr, &len, e);
    if (r) return r;
    mc_sha256_buf(addr, len, out);
    munmap(addr, len);
    return 0;
}

/* Converts unit rows of f32 into the index's storage type. */
static void store_row(const float *src, int dim, mc_index_dtype t, void *dst) {
    if (t == MC_INDEX_F32) memcpy(dst, src, sizeof(float) * (size_t)dim);
    else
        for (int d = 0; d < dim; d++) ((uint16_t *)dst)[d] = mc_f32_to_f16(src[d]);
}

static int parse_count(const char *cmd, const char *opt, const char *v, int max, int *out) {
    char *end;
    errno = 0;
    long k = strtol(v, &end, 10);
    if (*end || errno || k < 1 || k > max) {
        fprintf(stderr, "mobileclip %s: %s expects a number from 1 to %d, got '%s'\n", cmd, opt, max, v);
        return -1;
    }
    *out = (int)k;
    return 0;
}

/* What changed since the old index, file by file, as tasks on the library's pool
 * (core/parallel.h): task i stats (and when needed hashes) file i into its own slots. */
typedef struct scan_job {
    const mc_strlist *files;
    const mc_index *old;
    mc_index_item *items;
    int64_t *prev;
    int *hash_err;
} scan_job;

static void scan_files(void *arg, int i0, int i1) {
    const scan_job *j = arg;
    for (int i = i0; i < i1; i++) {
        mc_index_item *it = &j->items[i];
        struct stat st;
        it->path = j->files->items[i];
        j->prev[i] = j->old->count ? mc_index_find(j->old, it->path) : -1;
        if (stat(it->path, &st)) { j->hash_err[i] = 1; continue; }
        it->size = (uint64_t)st.st_size;
        it->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        mc_index_item was = {0};
        if (j->prev[i] >= 0) {
            mc_index_get(j->old, (uint64_t)j->prev[i], &was);
            if (was.size == it->size && was.mtime_ns == it->mtime_ns) {
                memcpy(it->sha256, was.sha256, 32);
                continue;
            }
        }
        mc_err he = {0};
        if (hash_file(it->path, it->sha256, &he)) { j->hash_err[i] = 1; continue; }
        if (j->prev[i] >= 0 && (was.size != it->size || memcmp(was.sha256, it->sha256, 32))) j->prev[i] = -1;
    }
}

int mc_cmd_index(int argc, char **argv) {
    mc_model_opts o = {.arch = MOBILECLIP_ARCH_AUTO};
    const char *out_path = NULL;
    int batch = 16, progress = 0, json = 0, status = 2, n_other = 0;
    mc_index_dtype dtype = MC_INDEX_F32;
    mc_strlist files = {0};
    mc_err e = {0};
    mc_index old = {0};
    mobileclip_ctx *ctx = NULL;
    mc_index_item *items = NULL;
    uint8_t *rows = NULL, *ok = NULL;
    float *emb = NULL;
    char **todo = NULL;
    int *todo_item = NULL;
    for (int i = 1; i < argc; i++) {
        int r = mc_cli_model_opt("index", argc, argv, &i, &o);
        if (r < 0) goto done;
        if (r > 0) continue;
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(index_help, stdout);
            status = 0;
            goto done;
        } else if (!strcmp(a, "--progress")) progress = 1;
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--image-list") || !strcmp(a, "--image") ||
                 !strcmp(a, "--dtype") || !strcmp(a, "--batch")) {
            if (!(v = mc_cli_value("index", argc, argv, &i))) goto done;
            if (a[1] == 'o' || !strcmp(a, "--output")) out_path = v;
            else if (!strcmp(a, "--batch")) {
                if (parse_count("index", a, v, 4096, &batch)) goto done;
            } else if (!strcmp(a, "--dtype")) {
                if (!strcmp(v, "f32")) dtype = MC_INDEX_F32;
                else if (!strcmp(v, "f16")) dtype = MC_INDEX_F16;
                else {
                    fprintf(stderr, "mobileclip index: --dtype expects f32 or f16, got '%s'\n", v);
                    goto done;
                }
            } else if (!strcmp(a, "--image")) {
                if (mc_strlist_push(&files, v, strlen(v), &e)) goto fail;
            } else {
                int n;
                char **lines = mc_cli_read_lines("index", v, &n);
                if (!lines) { status = 1; goto done; }
                for (int k = 0; k < n && !e.code; k++) mc_strlist_push(&files, lines[k], strlen(lines[k]), &e);
                mc_cli_free_lines(lines);
                if (e.code) goto fail;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "mobileclip index: unknown option '%s' (see --help)\n", a);
            goto done;
        } else if (mc_walk_images(a, NULL, &files, &n_other, &e)) {
            goto fail;
        }
    }
    if (!out_path) { fprintf(stderr, "mobileclip index: -o INDEX is required\n"); goto done; }
    if ((status = mc_cli_check_model_opts("index", &o, 0))) goto done;
    status = 1;
    mc_strlist_sort_unique(&files);
    if (!files.count) { fprintf(stderr, "mobileclip index: no images among the inputs\n"); goto done; }
    if (!(ctx = mc_cli_load("index", &o, 1, 0))) goto done;
    mc_index_meta meta = {.dim = (uint32_t)mobileclip_embed_dim(ctx), .dtype = dtype};
    snprintf(meta.arch, sizeof meta.arch, "%s", mobileclip_arch_name(mobileclip_get_arch(ctx)));
    if (mobileclip_model_id(ctx, meta.model_id)) {
        fprintf(stderr, "mobileclip index: %s\n", mobileclip_last_error(ctx));
        goto done;
    }
    if (access(out_path, F_OK) == 0) {
        if (mc_index_open(out_path, &old, &e)) {
            fprintf(stderr, "mobileclip index: cannot update %s (remove it to build a new index)\n", e.msg);
            goto done;
        }
        if (memcmp(old.meta.model_id, meta.model_id, 32) || old.meta.dim != meta.dim) {
            fprintf(stderr, "mobileclip index: %s was built with another model (%s); write a new index with -o\n",
                    out_path, old.meta.arch);
            goto done;
        }
        if (old.meta.dtype != dtype) {
            fprintf(stderr, "mobileclip index: %s stores %s rows; rerun with --dtype %s or write a new index\n", out_path,
                    old.meta.dtype == MC_INDEX_F16 ? "f16" : "f32", old.meta.dtype == MC_INDEX_F16 ? "f16" : "f32");
            goto done;
        }
    }
    const size_t row_bytes = meta.dim * mc_index_dtype_size(dtype);
    items = calloc((size_t)files.count, sizeof *items);
    rows = malloc(row_bytes * (size_t)files.count);
    todo = malloc(sizeof *todo * (size_t)files.count);
    todo_item = malloc(sizeof *todo_item * (size_t)files.count);
    int *hash_err = calloc((size_t)files.count, sizeof *hash_err);
    if (!items || !rows || !todo || !todo_item || !hash_err) {
        free(hash_err);
        fprintf(stderr, "mobileclip index: out of memory\n");
        goto done;
    }
    /* what changed: size + mtime first, the content hash only when they differ */
    int n_todo = 0, unchanged = 0, unreadable = 0;
    int64_t *prev = malloc(sizeof *prev * (size_t)files.count);
    if (!prev) { free(hash_err); fprintf(stderr, "mobileclip index: out of memory\n"); goto done; }
    scan_job sj = {&files, &old, items, prev, hash_err};
    mc_parallel_for(files.count, 8, scan_files, &sj);
    for (int i = 0; i < files.count; i++) {
        if (hash_err[i]) {
            fprintf(stderr, "mobileclip index: skipped: %s: cannot read\n", files.items[i]);
            unreadable++;
            items[i].path = NULL;
        } else if (prev[i] >= 0) {
            mc_index_item was;
            mc_index_get(&old, (uint64_t)prev[i], &was);
            memcpy(rows + row_bytes * (size_t)i, was.row, row_bytes);
            unchanged++;
        } else {
            todo[n_todo] = files.items[i];
            todo_item[n_todo++] = i;
        }
    }
    free(hash_err);
    free(prev);
    int dropped = 0;
    for (uint64_t k = 0; k < old.count; k++) {
        mc_index_item was;
        mc_index_get(&old, k, &was);
        int found = 0;
        /* files is sorted: binary search */
        for (int lo = 0, hi = files.count - 1; lo <= hi && !found;) {
            int mid = lo + (hi - lo) / 2, c = strcmp(files.items[mid], was.path);
            if (!c) found = 1;
            else if (c < 0) lo = mid + 1;
            else hi = mid - 1;
        }
        dropped += !found;
    }
    emb = malloc(sizeof(float) * meta.dim * (size_t)(n_todo ? n_todo : 1));
    ok = calloc((size_t)(n_todo ? n_todo : 1), 1);
    if (!emb || !ok) { fprintf(stderr, "mobileclip index: out of memory\n"); goto done; }
    mc_cli_report rep;
    mc_cli_report_start(&rep, "index", progress);
    mc_batch_hooks hooks = mc_cli_report_hooks(&rep);
    if (n_todo && mc_batch_embed_images(ctx, n_todo, batch, mc_batch_load_path, todo, emb, ok, &hooks, &e)) goto fail;
    int embedded = 0;
    for (int k = 0; k < n_todo; k++) {
        if (ok[k]) {
            store_row(emb + (size_t)k * meta.dim, (int)meta.dim, dtype, rows + row_bytes * (size_t)todo_item[k]);
            embedded++;
        } else {
            items[todo_item[k]].path = NULL;
        }
    }
    /* keep the indexed items (still in path order) */
    uint64_t n_out = 0;
    for (int i = 0; i < files.count; i++) {
        if (!items[i].path) continue;
        items[n_out] = items[i];
        items[n_out++].row = rows + row_bytes * (size_t)i;
    }
    mc_index_close(&old); /* before replacing the file it maps */
    if (mc_index_write(out_path, &meta, items, n_out, &e)) goto fail;
    int skipped = rep.skipped + unreadable;
    if (json) {
        printf("{\"index\":");
        mc_json_print_string(stdout, out_path);
        printf(",\"images\":%llu,\"embedded\":%d,\"unchanged\":%d,\"dropped\":%d,\"skipped\":%d,\"not_images\":%d}\n",
               (unsigned long long)n_out, embedded, unchanged, dropped, skipped, n_other);
    }
    fprintf(stderr, "mobileclip index: %s: %llu images (%d embedded, %d unchanged, %d dropped, %d skipped)\n", out_path,
            (unsigned long long)n_out, embedded, unchanged, dropped, skipped);
    status = mc_cli_finish_output("index");
    goto done;
fail:
    fprintf(stderr, "mobileclip index: %s\n", e.msg);
    status = 1;
done:
    mc_index_close(&old);
    mobileclip_free(ctx);
    mc_strlist_free(&files);
    free(items), free(rows), free(ok), free(emb), free(todo), free(todo_item);
    return status;
}

int mc_cmd_search(int argc, char **argv) {
    mc_model_opts o = {.arch = MOBILECLIP_ARCH_AUTO};
    const char *index_path = NULL, *text = NULL, *image = NULL;
    int top = 10, json = 0, status = 2;
    mc_index ix = {0};
    mc_err e = {0};
    mobileclip_ctx *ctx = NULL;
    float *scores = NULL, *q = NULL;
    mc_search_hit *hits = NULL;
    for (int i = 1; i < argc; i++) {
        int r = mc_cli_model_opt("search", argc, argv, &i, &o);
        if (r < 0) goto done;
        if (r > 0) continue;
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(search_help, stdout);
            status = 0;
            goto done;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--text") || !strcmp(a, "--image") || !strcmp(a, "--top")) {
            if (!(v = mc_cli_value("search", argc, argv, &i))) goto done;
            if (!strcmp(a, "--text")) text = v;
            else if (!strcmp(a, "--image")) image = v;
            else if (parse_count("search", a, v, 1000000, &top)) goto done;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mobileclip search: unknown option '%s' (see --help)\n", a);
            goto done;
        } else if (index_path) {
            fprintf(stderr, "mobileclip search: one INDEX only ('%s' and '%s')\n", index_path, a);
            goto done;
        } else index_path = a;
    }
    if (!index_path) { fprintf(stderr, "mobileclip search: give the INDEX file\n"); goto done; }
    if (!text == !image) { fprintf(stderr, "mobileclip search: give exactly one of --text and --image\n"); goto done; }
    if ((status = mc_cli_check_model_opts("search", &o, text != NULL))) goto done;
    status = 1;
    if (mc_index_open(index_path, &ix, &e)) goto fail;
    if (!(ctx = mc_cli_load("search", &o, image != NULL, text != NULL))) goto done;
    uint8_t id[32];
    if (mobileclip_model_id(ctx, id)) {
        fprintf(stderr, "mobileclip search: %s\n", mobileclip_last_error(ctx));
        goto done;
    }
    if (memcmp(id, ix.meta.model_id, 32) || (int)ix.meta.dim != mobileclip_embed_dim(ctx)) {
        char a[65], b[65];
        mc_sha256_hex(ix.meta.model_id, a);
        mc_sha256_hex(id, b);
        fprintf(stderr, "mobileclip search: %s was built with another model (%s, weights %.12s), not this checkpoint (weights %.12s)\n",
                index_path, ix.meta.arch, a, b);
        goto done;
    }
    if (!(q = malloc(sizeof(float) * ix.meta.dim))) { fprintf(stderr, "mobileclip search: out of memory\n"); goto done; }
    if ((text ? mobileclip_encode_texts(ctx, &text, 1, q, 1) : mobileclip_encode_image_files(ctx, &image, 1, q, 1))) {
        fprintf(stderr, "mobileclip search: %s\n", mobileclip_last_error(ctx));
        goto done;
    }
    int k = (uint64_t)top < ix.count ? top : (int)ix.count;
    scores = malloc(sizeof(float) * (size_t)(ix.count ? ix.count : 1));
    hits = malloc(sizeof *hits * (size_t)(k ? k : 1));
    if (!scores || !hits) { fprintf(stderr, "mobileclip search: out of memory\n"); goto done; }
    mc_search_scores(q, ix.rows, ix.meta.dtype, (int64_t)ix.count, (int)ix.meta.dim, scores);
    mc_search_topk(scores, (int64_t)ix.count, k, hits);
    if (json) {
        printf("{\"query\":");
        mc_json_print_string(stdout, text ? text : image);
        printf(",\"results\":[");
    }
    for (int j = 0; j < k; j++) {
        mc_index_item it;
        mc_index_get(&ix, (uint64_t)hits[j].index, &it);
        if (json) {
            printf("%s{\"rank\":%d,\"path\":", j ? "," : "", j + 1);
            mc_json_print_string(stdout, it.path);
            printf(",\"score\":");
            mc_json_print_number(stdout, hits[j].score, 7);
            printf("}");
        } else {
            printf("%3d  %.6f  %s\n", j + 1, hits[j].score, it.path);
        }
    }
    if (json) printf("]}\n");
    status = mc_cli_finish_output("search");
    goto done;
fail:
    fprintf(stderr, "mobileclip search: %s\n", e.msg);
    status = 1;
done:
    mc_index_close(&ix);
    mobileclip_free(ctx);
    free(scores), free(hits), free(q);
    return status;
}
