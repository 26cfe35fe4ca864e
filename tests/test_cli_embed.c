/* End to end through the command line: write each test model as a torch.save-style .pt
 * checkpoint, run `mobileclip embed` on the golden photos and texts, and compare the JSON
 * output with the reference embeddings. Archs: $MC_TEST_ARCHS (default "s0 s1 s2 b"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/test_util.h"

static char *run_capture(const char *cmd) {
    FILE *p = popen(cmd, "r");
    if (!p) mc_test_fatal("cannot run %s", cmd);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 4096) buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    int st = pclose(p);
    CHECK(st == 0, "command failed (status %d): %s", st, cmd);
    return buf;
}

/* Appends a shell-quoted copy of s to cmd. */
static void append_quoted(char *cmd, size_t cap, const char *s) {
    size_t l = strlen(cmd);
    cmd[l++] = ' ';
    cmd[l++] = '\'';
    for (; *s && l + 5 < cap; s++) {
        if (*s == '\'') { memcpy(cmd + l, "'\\''", 4); l += 4; }
        else cmd[l++] = *s;
    }
    cmd[l++] = '\'';
    cmd[l] = 0;
}

static void check_arch(const char *arch, const char *tmpdir) {
    char rel[64], ckpt[512], cmd[16384];
    snprintf(rel, sizeof rel, "golden/%s.golden.safetensors", arch);
    mc_tensor_map g;
    mc_json *hdr;
    mc_test_load_golden(rel, &g, &hdr);
    const mc_json *meta = mc_json_get(hdr, "__metadata__"), *texts_s = mc_json_get(meta, "texts");
    mc_err e = {0};
    mc_json *texts = texts_s ? mc_json_parse(texts_s->str, texts_s->len, &e) : NULL;
    if (!texts) mc_test_fatal("%s: no texts in metadata", rel);

    snprintf(ckpt, sizeof ckpt, "%s/%s.pt", tmpdir, arch);
    snprintf(cmd, sizeof cmd, "'%s/make_test_checkpoint' %s '%s'", getenv("MC_BUILD_DIR"), arch, ckpt);
    free(run_capture(cmd));

    snprintf(cmd, sizeof cmd, "'%s' embed --raw --checkpoint '%s' --vocab '%s' --image '%s' --text", getenv("MC_CLI"), ckpt,
             mc_test_path("vocab/bpe_simple_vocab_16e6.txt.gz"), mc_test_path("images/chelsea.png"));
    append_quoted(cmd, sizeof cmd, texts->items[0].str);
    snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " --image '%s'", mc_test_path("images/astronaut.png"));
    for (int t = 1; t < texts->count; t++) {
        strcat(cmd, " --text");
        append_quoted(cmd, sizeof cmd, texts->items[t].str);
    }
    char *out = run_capture(cmd);

    /* expected order: image0, text0, image1, text1, text2, text3 */
    const char *kinds[6] = {"image", "text", "image", "text", "text", "text"};
    const int rows[6] = {0, 0, 1, 1, 2, 3};
    const mc_tensor *img_ref = mc_test_tensor(&g, "output.image_embed_reparam");
    const mc_tensor *txt_ref = mc_test_tensor(&g, "output.text_embed_reparam");
    char *save = NULL;
    int k = 0;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), k++) {
        mc_json *j = mc_json_parse(line, strlen(line), &e);
        CHECK(j != NULL, "%s: output line %d is not JSON: %s", arch, k, e.msg);
        if (!j || k >= 6) { mc_json_free(j); continue; }
        const mc_json *kind = mc_json_get(j, "kind"), *emb = mc_json_get(j, "embedding");
        CHECK(kind && strcmp(kind->str, kinds[k]) == 0, "%s: line %d kind", arch, k);
        CHECK(emb && emb->count == 512, "%s: line %d embedding length", arch, k);
        if (emb && emb->count == 512) {
            float got[512];
            for (int d = 0; d < 512; d++) got[d] = (float)emb->items[d].number;
            const mc_tensor *ref = strcmp(kinds[k], "image") == 0 ? img_ref : txt_ref;
            mc_tensor row = *ref;
            row.ndim = 1;
            row.shape[0] = 512;
            row.stride[0] = 1;
            row.data = (const float *)ref->data + rows[k] * 512;
            char what[64];
            snprintf(what, sizeof what, "%s cli %s %d", arch, kinds[k], rows[k]);
            mc_test_compare(what, got, &row, 1e-4);
            float refv[512];
            mc_tensor_to_f32(&row, refv);
            double c = mc_test_cosine(got, refv, 512);
            CHECK(c >= 0.99999, "%s: cosine %.8f", what, c);
        }
        mc_json_free(j);
    }
    CHECK(k == 6, "%s: expected 6 output lines, got %d", arch, k);
    free(out);

    /* classify --json with the non-empty texts as labels and the template "{}": the
     * probabilities must be the softmax of the reference's logits over those columns */
    char labels_path[512], tmpl_path[512];
    snprintf(labels_path, sizeof labels_path, "%s/labels.txt", tmpdir);
    snprintf(tmpl_path, sizeof tmpl_path, "%s/templates.txt", tmpdir);
    int cols[4], ncols = 0;
    FILE *f = fopen(labels_path, "w");
    for (int t = 0; t < texts->count && t < 4; t++)
        if (texts->items[t].str[0]) {
            fprintf(f, "%s\n", texts->items[t].str);
            cols[ncols++] = t;
        }
    fclose(f);
    f = fopen(tmpl_path, "w");
    fprintf(f, "{}\n");
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "'%s' classify --json --top 4 --checkpoint '%s' --vocab '%s' --labels-file '%s' --templates '%s' "
             "--image '%s' --image '%s'",
             getenv("MC_CLI"), ckpt, mc_test_path("vocab/bpe_simple_vocab_16e6.txt.gz"), labels_path, tmpl_path,
             mc_test_path("images/chelsea.png"), mc_test_path("images/astronaut.png"));
    out = run_capture(cmd);
    float logits[8];
    mc_tensor_to_f32(mc_test_tensor(&g, "output.logits_per_image"), logits);
    k = 0;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), k++) {
        mc_json *j = mc_json_parse(line, strlen(line), &e);
        const mc_json *top = mc_json_get(j, "top");
        CHECK(top && top->count == ncols && k < 2, "%s: classify line %d", arch, k);
        if (!top || top->count != ncols || k >= 2) { mc_json_free(j); continue; }
        double m = -INFINITY, sum = 0, worst = 0;
        for (int c = 0; c < ncols; c++) m = fmax(m, logits[k * 4 + cols[c]]);
        for (int c = 0; c < ncols; c++) sum += exp(logits[k * 4 + cols[c]] - m);
        for (int r = 0; r < ncols; r++) {
            const mc_json *lab = mc_json_get(&top->items[r], "label"), *prob = mc_json_get(&top->items[r], "prob");
            int c = 0;
            while (c < ncols && !(lab && strcmp(lab->str, texts->items[cols[c]].str) == 0)) c++;
            CHECK(c < ncols && prob, "%s: classify label %d unknown", arch, r);
            if (c < ncols && prob) worst = fmax(worst, fabs(prob->number - exp(logits[k * 4 + cols[c]] - m) / sum));
        }
        printf("%-4s %s cli classify image %d: max |p - softmax(ref logits)| %.2e\n", worst < 1e-5 ? "ok" : "FAIL", arch, k, worst);
        CHECK(worst < 1e-5, "%s: classify probabilities off by %g", arch, worst);
        mc_json_free(j);
    }
    CHECK(k == 2, "%s: classify printed %d lines", arch, k);
    free(out);
    remove(labels_path);
    remove(tmpl_path);
    remove(ckpt);
    mc_json_free(texts);
    mc_json_free(hdr);
    mc_tensor_map_free(&g);
}

int main(void) {
    if (!getenv("MC_CLI") || !getenv("MC_BUILD_DIR")) mc_test_fatal("MC_CLI and MC_BUILD_DIR must be set (run via ctest)");
    char tmpdir[] = "/tmp/mc_cli_XXXXXX";
    if (!mkdtemp(tmpdir)) mc_test_fatal("mkdtemp failed");
    const char *archs = getenv("MC_TEST_ARCHS");
    char list[64];
    snprintf(list, sizeof list, "%s", archs && *archs ? archs : "s0 s1 s2 b");
    char *save = NULL;
    for (char *a = strtok_r(list, " ", &save); a; a = strtok_r(NULL, " ", &save)) check_arch(a, tmpdir);
    rmdir(tmpdir);
    return mc_test_finish("cli_embed");
}
