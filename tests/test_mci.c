/* MCi0/1/2 image encoders against the golden reference (shared/golden/s{0,1,2}.*):
 * training form (embeddings and every trace.image.* tensor) and reparameterized form, plus
 * binding errors (missing, mis-shaped and unexpected tensors), variant recognition,
 * batch independence and another resolution. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/test_util.h"
#include "common/weight_rule.h"
#include "models/mci.h"

#define REL_TOL 1e-4
#define COS_MIN 0.99999





static double max_rel_diff(const float *a, const float *b, size_t n) {
    double m = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        m = fmax(m, fabs(b[i]));
        d = fmax(d, fabs((double)a[i] - b[i]));
    }
    return d / (m > 0 ? m : 1);
}

static void reset_used(mc_tensor_map *w) {
    for (int i = 0; i < w->count; i++) w->items[i].used = 0;
}

static mc_named_tensor *item(mc_tensor_map *w, const char *name) {
    for (int i = 0; i < w->count; i++)
        if (!strcmp(w->items[i].name, name)) return &w->items[i];
    mc_test_fatal("no tensor %s in the test weights", name);
    return NULL;
}

/* Binding errors on the s0 weights: each must fail with a message naming the tensor. */
static void test_bad_weights(mc_tensor_map *w) {
    mc_mci *m = NULL;
    mc_err e = {0};
    int r;

    /* missing */
    const char *victim = "image_encoder.model.network.4.3.convffn.fc1.bias";
    mc_named_tensor *it = item(w, victim);
    it->name[0] = 'X';
    reset_used(w);
    r = mc_mci_init(&m, w, 0, &e);
    printf("     missing: %s\n", e.msg);
    CHECK(r == MC_E_MODEL && !m && strstr(e.msg, victim) && strstr(e.msg, "missing"), "missing tensor: %d %s", r, e.msg);
    it->name[0] = 'i';

    /* mis-shaped */
    victim = "image_encoder.model.network.5.proj.0.se.fc1.weight";
    it = item(w, victim);
    it->t.shape[0] = 96; /* was 128 */
    reset_used(w);
    mc_err_clear(&e);
    r = mc_mci_init(&m, w, 0, &e);
    printf("     mis-shaped: %s\n", e.msg);
    CHECK(r == MC_E_MODEL && !m && strstr(e.msg, victim) && strstr(e.msg, "[96, 512, 1, 1]"), "mis-shaped: %d %s", r,
          e.msg);
    it->t.shape[0] = 128;

    /* wrong variant: MCi1 expects 4 blocks in stage 0 */
    reset_used(w);
    mc_err_clear(&e);
    r = mc_mci_init(&m, w, 1, &e);
    printf("     wrong variant: %s\n", e.msg);
    CHECK(r == MC_E_MODEL && !m && strstr(e.msg, "network.0.2."), "wrong variant: %d %s", r, e.msg);

    /* unexpected extra tensor */
    static float dummy[4];
    mc_tensor t = {.dtype = MC_DTYPE_F32, .ndim = 1, .shape = {4}, .stride = {1}, .data = dummy, .storage_id = -1};
    CHECK(mc_tensor_map_add(w, "image_encoder.model.network.7.0.token_mixer.qkv.bias", &t, &e) == 0, "add");
    reset_used(w);
    mc_err_clear(&e);
    r = mc_mci_init(&m, w, -1, &e);
    printf("     unexpected: %s\n", e.msg);
    CHECK(r == MC_E_MODEL && !m && strstr(e.msg, "unexpected tensor 'image_encoder.model.network.7.0.token_mixer.qkv.bias'"),
          "unexpected: %d %s", r, e.msg);
    w->count--; /* drop it again (the name is freed here) */
    free(w->items[w->count].name);

    /* a map without an image encoder */
    mc_tensor_map empty;
    mc_tensor_map_init(&empty);
    CHECK(mc_mci_variant_from_weights(&empty) == -1, "empty map recognised");
    mc_err_clear(&e);
    r = mc_mci_init(&m, &empty, -1, &e);
    CHECK(r == MC_E_MODEL && !m, "init on empty map: %d", r);
    printf("     empty: %s\n", e.msg);
    mc_tensor_map_free(&empty);

    /* forward arguments */
    reset_used(w);
    mc_err_clear(&e);
    CHECK(mc_mci_init(&m, w, 0, &e) == 0, "re-init: %s", e.msg);
    if (m) {
        float img[3 * 32 * 32] = {0}, out[512];
        CHECK(mc_mci_forward(m, img, 1, 32, 1, out, NULL, &e) == MC_E_ARG, "reparameterized form before reparameterize");
        CHECK(mc_mci_forward(m, img, 0, 32, 0, out, NULL, &e) == MC_E_ARG, "B = 0");
        mc_mci_free(m);
    }
}

/* s0 only: a batch row does not depend on the other rows, and another resolution runs
 * with the training and reparameterized forms agreeing. */
static void test_batch_and_resolution(mc_mci *m, const float *images, int R) {
    mc_err e = {0};
    float two[2 * 512], one[512];
    CHECK(mc_mci_forward(m, images, 2, R, 1, two, NULL, &e) == 0, "%s", e.msg);
    CHECK(mc_mci_forward(m, images + 3 * R * R, 1, R, 1, one, NULL, &e) == 0, "%s", e.msg);
    double d = max_rel_diff(one, two + 512, 512);
    printf("     s0 batch row 1 alone vs in batch: rel diff %.2e\n", d);
    CHECK(d <= 1e-6, "batch independence: %g", d);

    /* R = 160: center 160x160 crop of image 0 */
    int r2 = 160, off = (R - r2) / 2;
    float *crop = malloc(sizeof(float) * 3 * r2 * r2), a[512], b[512];
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < r2; y++)
            memcpy(crop + ((size_t)c * r2 + y) * r2, images + ((size_t)c * R + y + off) * R + off, sizeof(float) * r2);
    CHECK(mc_mci_forward(m, crop, 1, r2, 0, a, NULL, &e) == 0, "%s", e.msg);
    CHECK(mc_mci_forward(m, crop, 1, r2, 1, b, NULL, &e) == 0, "%s", e.msg);
    d = max_rel_diff(b, a, 512);
    printf("     s0 R=160 reparameterized vs training form: rel diff %.2e\n", d);
    CHECK(d <= REL_TOL && isfinite(d), "R=160 forms differ: %g", d);
    /* sizes that are not multiples of 32, down to 1x1 feature maps everywhere: both forms
     * run (under the sanitizers too) and agree */
    static const int odd[] = {100, 33, 7, 1};
    for (int i = 0; i < 4; i++) {
        int r = odd[i];
        CHECK(mc_mci_forward(m, crop, 1, r, 0, a, NULL, &e) == 0, "R=%d: %s", r, e.msg);
        CHECK(mc_mci_forward(m, crop, 1, r, 1, b, NULL, &e) == 0, "R=%d: %s", r, e.msg);
        d = max_rel_diff(b, a, 512);
        printf("     s0 R=%d reparameterized vs training form: rel diff %.2e\n", r, d);
        CHECK(d <= REL_TOL && isfinite(d), "R=%d forms differ: %g", r, d);
    }
    free(crop);
}

static void run_arch(int variant) {
    char arch[16], rel[64], what[96];
    snprintf(arch, sizeof arch, "s%d", variant);
    mc_tensor_map w, g;
    mc_tensor_map_init(&w);
    mc_err e = {0};
    snprintf(rel, sizeof rel, "golden/%s.params.tsv", arch);
    if (mc_weights_from_tsv(mc_test_path(rel), &w, NULL, &e)) mc_test_fatal("%s", e.msg);
    snprintf(rel, sizeof rel, "golden/%s.golden.safetensors", arch);
    mc_json *hdr = NULL;
    mc_test_load_golden(rel, &g, &hdr);
    mc_json_free(hdr);

    CHECK(mc_mci_variant_from_weights(&w) == variant, "%s: variant recognised as %d", arch,
          mc_mci_variant_from_weights(&w));
    mc_mci *m = NULL;
    if (mc_mci_init(&m, &w, variant, &e)) mc_test_fatal("%s: %s", arch, e.msg);
    CHECK(m->embed_dim == 512, "embed dim %d", m->embed_dim);

    const mc_tensor *in = mc_test_tensor(&g, "input.image");
    int B = (int)in->shape[0], R = (int)in->shape[3];
    float *images = malloc(sizeof(float) * (size_t)mc_tensor_numel(in));
    mc_tensor_to_f32(in, images);
    float *embed = malloc(sizeof(float) * (size_t)B * 512);

    mc_test_trace tc = {.golden = &g, .label = arch, .prefix = "trace.image.", .row = 0, .rel_tol = REL_TOL};
    mc_trace tr = {mc_test_on_trace, &tc};
    double t0 = mc_test_now();
    CHECK(mc_mci_forward(m, images, B, R, 0, embed, &tr, &e) == 0, "%s forward: %s", arch, e.msg);
    double t1 = mc_test_now();
    CHECK(tc.seen == 12, "%s: %d traced tensors, expected 12", arch, tc.seen);
    snprintf(what, sizeof what, "%s output.image_embed", arch);
    mc_test_compare_rows(what, embed, mc_test_tensor(&g, "output.image_embed"), REL_TOL, COS_MIN);

    double t2 = mc_test_now();
    CHECK(mc_mci_reparameterize(m, &e) == 0, "%s reparameterize: %s", arch, e.msg);
    double t3 = mc_test_now();
    CHECK(mc_mci_forward(m, images, B, R, 1, embed, NULL, &e) == 0, "%s reparameterized forward: %s", arch, e.msg);
    double t4 = mc_test_now();
    snprintf(what, sizeof what, "%s output.image_embed_reparam", arch);
    mc_test_compare_rows(what, embed, mc_test_tensor(&g, "output.image_embed_reparam"), REL_TOL, COS_MIN);
    printf("     %s B=%d R=%d: training form %.3f s, reparameterize %.3f s, reparameterized form %.3f s; worst trace %.2e\n", arch, B, R,
           t1 - t0, t3 - t2, t4 - t3, tc.worst);

    if (variant == 0) {
        test_batch_and_resolution(m, images, R);
        mc_mci_free(m);
        test_bad_weights(&w);
    } else {
        mc_mci_free(m);
    }
    free(images);
    free(embed);
    mc_tensor_map_free(&w);
    mc_tensor_map_free(&g);
}

int main(void) {
    for (int v = 0; v < 3; v++) run_arch(v);
    return mc_test_finish("mci");
}
