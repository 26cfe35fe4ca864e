/* fuzz_paug.c - libFuzzer target for the augmentation parameter reader (DataCompDR
 * paug.json and single compressed records, augment/params_json.c) and the augmentation
 * config reader (augment/config_json.c).
 *
 * Every input is read as paug.json under two pipelines (DataCompDR's, and one with
 * RandomHorizontalFlip). What is accepted must write back to JSON that reads as the same
 * parameters, and must reapply to a small image without error (small crops only, to keep
 * runs fast). What is refused must say why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment.h"

static void one(const mc_augment_config *cfg, const char *text, size_t size) {
    mc_err e = {0};
    mc_augment_params *ps = NULL;
    int n = 0;
    if (mc_augment_paug_parse(cfg, text, size, "fuzz.paug.json", &ps, &n, &e)) {
        if (!e.msg[0] || ps || n) abort();
        return;
    }
    char *out;
    size_t len;
    if (mc_augment_paug_write(cfg, ps, n, &out, &len, &e)) abort();
    mc_augment_params *qs = NULL;
    int m = 0;
    if (mc_augment_paug_parse(cfg, out, len, "rewritten", &qs, &m, &e) || m != n) abort();
    for (int k = 0; k < n; k++) {
        /* magnitudes go through Python's repr, which round-trips every double */
        if (memcmp(&ps[k], &qs[k], sizeof ps[k]) != 0) abort();
        char one_rec[4096];
        int r = mc_augment_params_to_json(cfg, &ps[k], one_rec, sizeof one_rec, &e);
        mc_augment_params q;
        if (r <= 0 || mc_augment_params_from_json(cfg, one_rec, (size_t)r, &q, &e) || memcmp(&q, &ps[k], sizeof q))
            abort();
        if ((int64_t)ps[k].crop_h * ps[k].crop_w <= 4096 && k < 4) {
            static uint8_t px[6 * 8 * 3];
            for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 37);
            mc_image im = {8, 6, px}, res;
            if (mc_augment_apply_u8(cfg, &ps[k], &im, 9, 7, &res, &e)) abort();
            mc_image_free(&res);
        }
    }
    free(out);
    free(qs);
    free(ps);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mc_augment_config cfg;
    mc_augment_config_datacompdr(&cfg);
    one(&cfg, (const char *)data, size);
    cfg.hflip = 1;
    one(&cfg, (const char *)data, size);
    /* the same bytes as an augmentation config (config_json.c) */
    mc_err e = {0};
    mc_json *j = mc_json_parse((const char *)data, size, &e);
    if (j) {
        mc_augment_config c2;
        int r = mc_augment_config_from_json(j, &c2, &e);
        if (r && !e.msg[0]) abort();
        if (!r && mc_augment_config_check(&c2, &e)) abort();
        mc_json_free(j);
    }
    return 0;
}
