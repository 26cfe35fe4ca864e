/* `mobileclip index` / `search` end to end on the s0 test model: the incremental update cases
 * (counted embeddings), rankings equal to a brute-force ranking of the API's own embeddings,
 * the same model as safetensors accepted, another model refused, damaged index files refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mobileclip.h"
#include "common/test_util.h"
#include "common/weight_rule.h"
#include "core/tensor.h"
#include "index/index.h"
#include "io/mapped_file.h"
#include "io/torch_writer.h"

static char tmp[256], ckpt[512], cmd[8192];
static const char *cli;

static mc_json *run_json(const char *args, int want_status, char **err_out) {
    return mc_test_cli_json(tmp, cli, args, want_status, err_out);
}

static double num(const mc_json *j, const char *key) {
    const mc_json *v = j ? mc_json_get(j, key) : NULL;
    return v ? v->number : -1;
}

/* index run: checks the summary counts */
static void index_run(const char *what, const char *args, int images, int embedded, int unchanged, int dropped,
                      int skipped) {
    char a[2048];
    snprintf(a, sizeof a, "index --json --checkpoint '%s' %s", ckpt, args);
    mc_json *j = run_json(a, 0, NULL);
    CHECK(j && num(j, "images") == images && num(j, "embedded") == embedded && num(j, "unchanged") == unchanged &&
              num(j, "dropped") == dropped && num(j, "skipped") == skipped,
          "%s: images %g embedded %g unchanged %g dropped %g skipped %g (want %d %d %d %d %d)", what, num(j, "images"),
          num(j, "embedded"), num(j, "unchanged"), num(j, "dropped"), num(j, "skipped"), images, embedded, unchanged,
          dropped, skipped);
    printf("%-4s index %-34s %d embedded, %d unchanged, %d dropped, %d skipped\n", j ? "ok" : "FAIL", what,
           (int)num(j, "embedded"), (int)num(j, "unchanged"), (int)num(j, "dropped"), (int)num(j, "skipped"));
    mc_json_free(j);
}

static void copy_file(const char *src, const char *dst) {
    char *d;
    size_t n;
    mc_err e = {0};
    if (mc_read_file(src, (size_t)1 << 28, &d, &n, &e)) mc_test_fatal("%s", e.msg);
    FILE *f = fopen(dst, "wb");
    if (!f || fwrite(d, 1, n, f) != n || fclose(f)) mc_test_fatal("cannot write %s", dst);
    free(d);
}

/* The search output for a query must be the brute-force ranking of the index's paths by the
 * cosine of the API's embeddings (f32) or of the rows stored in the index (f16). */
static void check_search(mobileclip_ctx *ctx, const char *index_file, const char *query_args, const float *q,
                         int f16) {
    char a[2048];
    snprintf(a, sizeof a, "search %s --json --top 100 --checkpoint '%s' --vocab '%s' %s", index_file, ckpt,
             mc_test_path("vocab/bpe_simple_vocab_16e6.txt.gz"), query_args);
    mc_json *j = run_json(a, 0, NULL);
    const mc_json *res = j ? mc_json_get(j, "results") : NULL;
    char path[600];
    snprintf(path, sizeof path, "%s/%s", tmp, index_file);
    mc_index ix;
    mc_err e = {0};
    if (mc_index_open(path, &ix, &e)) mc_test_fatal("%s", e.msg);
    int n = (int)ix.count, *order = malloc(sizeof(int) * n);
    double *s = malloc(sizeof(double) * n), worst_api = 0;
    for (int i = 0; i < n; i++) {
        mc_index_item it;
        mc_index_get(&ix, (uint64_t)i, &it);
        char full[1200];
        snprintf(full, sizeof full, "%s/%s", tmp, it.path);
        float emb[512], stored[512];
        const char *p = full;
        if (mobileclip_encode_image_files(ctx, &p, 1, emb, 1)) mc_test_fatal("%s", mobileclip_last_error(ctx));
        for (int d = 0; d < 512; d++)
            stored[d] = f16 ? mc_f16_to_f32(((const uint16_t *)it.row)[d]) : ((const float *)it.row)[d];
        for (int d = 0; d < 512; d++) worst_api = fmax(worst_api, fabs(stored[d] - emb[d]));
        double acc = 0;
        for (int d = 0; d < 512; d++) acc += (double)q[d] * (f16 ? stored[d] : emb[d]);
        s[i] = acc;
        order[i] = i;
    }
    for (int i = 1; i < n; i++)
        for (int k = i; k > 0 && (s[order[k]] > s[order[k - 1]] || (s[order[k]] == s[order[k - 1]] && order[k] < order[k - 1])); k--) {
            int t = order[k]; order[k] = order[k - 1]; order[k - 1] = t;
        }
    CHECK(worst_api < (f16 ? 1e-3 : 1e-6), "%s: stored rows differ from the API's embeddings by %.2e", index_file, worst_api);
    int same = res && res->count == n;
    double worst = 0;
    for (int r = 0; same && r < n; r++) {
        mc_index_item it;
        mc_index_get(&ix, (uint64_t)order[r], &it);
        const mc_json *pj = mc_json_get(&res->items[r], "path"), *sj = mc_json_get(&res->items[r], "score");
        same &= pj && sj && !strcmp(pj->str, it.path);
        if (sj) worst = fmax(worst, fabs(sj->number - s[order[r]]));
    }
    CHECK(same && worst < 2e-6, "%s %s: ranking differs from brute force (score err %.2e)", index_file, query_args, worst);
    printf("%-4s search %s %-40.40s = brute force over %d images (score err %.1e)\n", same ? "ok" : "FAIL", index_file,
           query_args, n, worst);
    mc_index_close(&ix);
    free(order), free(s);
    mc_json_free(j);
}

int main(void) {
    cli = getenv("MC_CLI");
    const char *bdir = getenv("MC_BUILD_DIR");
    if (!cli || !bdir) mc_test_fatal("MC_CLI / MC_BUILD_DIR not set (run through ctest)");
    snprintf(tmp, sizeof tmp, "/tmp/mc_test_cli_index_%ld", (long)getpid());
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/photos/sub'", tmp, tmp);
    if (system(cmd)) mc_test_fatal("cannot create %s", tmp);
    snprintf(ckpt, sizeof ckpt, "%s/s0.pt", tmp);
    snprintf(cmd, sizeof cmd, "'%s/make_test_checkpoint' s0 '%s' && '%s/make_test_checkpoint' s0 '%s/s0.safetensors'", bdir,
             ckpt, bdir, tmp);
    if (system(cmd)) mc_test_fatal("make_test_checkpoint failed");
    /* the same model with one weight changed: another model */
    {
        mc_tensor_map m;
        mc_err e = {0};
        mc_tensor_map_init(&m);
        if (mc_weights_from_tsv(mc_test_path("golden/s0.params.tsv"), &m, NULL, &e)) mc_test_fatal("%s", e.msg);
        mc_named_tensor *t = mc_test_entry(&m, "logit_scale");
        ((float *)t->t.data)[0] += 0.25f;
        char other[600];
        snprintf(other, sizeof other, "%s/other.pt", tmp);
        if (mc_torch_save(other, &m, &e)) mc_test_fatal("%s", e.msg);
        mc_tensor_map_free(&m);
    }
    static const char *imgs[] = {"chelsea.png", "astronaut.png", "coffee.png", "rocket.jpg", "coins.png", "camera.png"};
    char p[1024];
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/photos/%s%s", tmp, i >= 4 ? "sub/" : "", imgs[i]);
        char rel[64];
        snprintf(rel, sizeof rel, "images/%s", imgs[i]);
        copy_file(mc_test_path(rel), p);
    }
    snprintf(p, sizeof p, "%s/photos/notes.txt", tmp);
    FILE *f = fopen(p, "w");
    fputs("not an image\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/photos/broken.jpg", tmp);
    f = fopen(p, "wb");
    fwrite("\xff\xd8\xff\xe0\x00\x10JFIF", 1, 10, f); /* JPEG signature, then nothing */
    fclose(f);

    index_run("new", "photos -o a.mci", 6, 6, 0, 0, 1);
    index_run("re-run", "photos -o a.mci", 6, 0, 6, 0, 1);
    snprintf(p, sizeof p, "%s/photos/coffee.png", tmp);
    snprintf(cmd, sizeof cmd, "touch -d '2001-02-03 04:05:06' '%s'", p);
    if (system(cmd)) mc_test_fatal("touch failed");
    index_run("touched (same content)", "photos -o a.mci", 6, 0, 6, 0, 1);
    { /* the record now holds the new time, so the next run does not hash the file again */
        struct stat st;
        mc_index ix;
        mc_index_item it;
        mc_err e = {0};
        char ip[600];
        snprintf(ip, sizeof ip, "%s/a.mci", tmp);
        int64_t k = -1;
        if (stat(p, &st) == 0 && mc_index_open(ip, &ix, &e) == 0) {
            k = mc_index_find(&ix, "photos/coffee.png");
            if (k >= 0) mc_index_get(&ix, (uint64_t)k, &it);
            CHECK(k >= 0 && it.mtime_ns == (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec &&
                      it.size == (uint64_t)st.st_size,
                  "touched file's record updated");
            mc_index_close(&ix);
        } else CHECK(0, "reopen a.mci: %s", e.msg);
    }
    copy_file(mc_test_path("images/hubble_deep_field.jpg"), p); /* same name, new content */
    index_run("modified", "photos -o a.mci", 6, 1, 5, 0, 1);
    snprintf(p, sizeof p, "%s/photos/sub/camera.png", tmp);
    unlink(p);
    snprintf(p, sizeof p, "%s/photos/logo.png", tmp);
    copy_file(mc_test_path("images/logo.png"), p);
    index_run("one added, one deleted", "photos -o a.mci", 6, 1, 5, 1, 1);
    /* the same files from a list: unchanged; a list of a subset drops the rest */
    snprintf(p, sizeof p, "%s/list.txt", tmp);
    f = fopen(p, "w");
    fprintf(f, "photos/astronaut.png\nphotos/chelsea.png\n");
    fclose(f);
    index_run("list + directory", "--image-list list.txt photos -o a.mci", 6, 0, 6, 0, 1);
    index_run("list only", "--image-list list.txt -o a.mci", 2, 0, 2, 4, 0);
    index_run("rebuilt", "photos -o a.mci", 6, 4, 2, 0, 1);
    index_run("f16", "photos --dtype f16 -o h.mci", 6, 6, 0, 0, 1);

    /* search == brute force, image and text queries, f32 and f16 */
    mobileclip_params prm = mobileclip_default_params();
    prm.vocab_path = mc_test_path("vocab/bpe_simple_vocab_16e6.txt.gz");
    char err[512];
    mobileclip_ctx *ctx = mobileclip_init_from_file(ckpt, &prm, err, sizeof err);
    if (!ctx) mc_test_fatal("%s", err);
    float q[512];
    const char *qi = mc_test_path("images/astronaut.png"), *qt = "a photo of a rocket";
    if (mobileclip_encode_image_files(ctx, &qi, 1, q, 1)) mc_test_fatal("%s", mobileclip_last_error(ctx));
    snprintf(p, sizeof p, "--image '%s'", qi);
    check_search(ctx, "a.mci", p, q, 0);
    check_search(ctx, "h.mci", p, q, 1);
    if (mobileclip_encode_texts(ctx, &qt, 1, q, 1)) mc_test_fatal("%s", mobileclip_last_error(ctx));
    check_search(ctx, "a.mci", "--text 'a photo of a rocket'", q, 0);
    mobileclip_free(ctx);

    /* the same weights as safetensors: accepted; another model: refused */
    char *msg;
    snprintf(p, sizeof p, "search a.mci --checkpoint s0.safetensors --image '%s' --top 2", qi);
    mc_json_free(run_json(p, 0, NULL));
    snprintf(p, sizeof p, "search a.mci --checkpoint other.pt --image '%s'", qi);
    mc_json_free(run_json(p, 1, &msg));
    CHECK(strstr(msg, "a.mci was built with another model"), "other model: %s", msg);
    printf("ok   other model refused: %s", msg);
    free(msg);
    mc_json_free(run_json("index --checkpoint other.pt photos -o a.mci", 1, &msg));
    CHECK(strstr(msg, "another model"), "index update with another model: %s", msg);
    free(msg);
    mc_json_free(run_json("index --checkpoint s0.pt photos --dtype f16 -o a.mci", 1, &msg));
    CHECK(strstr(msg, "f32 rows"), "dtype change: %s", msg);
    free(msg);

    /* damaged index files */
    snprintf(p, sizeof p, "cd '%s' && cp a.mci bad.mci && printf 'Z' | dd of=bad.mci bs=1 seek=700 conv=notrunc 2>/dev/null && "
             "head -c 3000 a.mci > short.mci", tmp);
    if (system(p)) mc_test_fatal("cannot write damaged copies");
    const char *cases[][2] = {{"bad.mci", "checksum mismatch"}, {"short.mci", "truncated index"}, {"photos/chelsea.png", "not a mobileclip index"}};
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "search %s --checkpoint s0.pt --image '%s'", cases[k][0], qi);
        mc_json_free(run_json(p, 1, &msg));
        CHECK(strstr(msg, cases[k][0]) && strstr(msg, cases[k][1]), "%s: %s", cases[k][0], msg);
        printf("ok   refused: %s", msg);
        free(msg);
    }
    mc_json_free(run_json("index --checkpoint s0.pt photos -o bad.mci", 1, &msg));
    CHECK(strstr(msg, "cannot update bad.mci") && strstr(msg, "checksum"), "update of a damaged index: %s", msg);
    free(msg);
    mc_json_free(run_json("search a.mci --checkpoint s0.pt", 2, NULL));
    mc_json_free(run_json("index --checkpoint s0.pt photos", 2, NULL));

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) fprintf(stderr, "warning: could not remove %s\n", tmp);
    return mc_test_finish("test_cli_index");
}
