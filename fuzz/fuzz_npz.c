/* fuzz_npz.c - libFuzzer target: .npy headers, .npz archives and the DataCompDR embeddings
 * (npz and gzip'd torch.save pth.gz).
 *
 * Each input goes through mc_npy_parse, mc_npz_open + every member as an array,
 * mc_dr_parse_npz and mc_dr_parse_pth_gz. Parsed arrays are converted to float to touch
 * every byte the parser claims is there.
 * Seeds (fuzz/seeds/npz): numpy .npy files of versions 1.0/2.0/3.0, np.savez and
 * np.savez_compressed embeddings, one bf16 pth.gz.
 * Run: build-fuzz/fuzz_npz -max_total_time=60 corpus fuzz/seeds/npz
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/dr_sample.h"
#include "io/npy.h"

static void touch(const mc_npy *a) {
    if (a->numel > (1 << 20)) return;
    float *f = malloc((size_t)(a->numel ? a->numel : 1) * sizeof *f);
    if (f) mc_npy_to_f32(a, 1, f);
    free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mc_err e = {0};
    mc_npy a;
    if (mc_npy_parse(data, size, "fuzz.npy", &a, &e) == 0) touch(&a);
    else if (!e.msg[0]) abort();
    mc_npz z;
    if (mc_npz_open(&z, data, size, "fuzz.npz", &e) == 0) {
        for (int i = 0; i < z.zip.count && i < 64; i++) {
            char key[256];
            size_t n = z.zip.entries[i].name_len < 255 ? z.zip.entries[i].name_len : 255;
            memcpy(key, z.zip.entries[i].name, n);
            key[n] = 0;
            if (mc_npz_get(&z, key, &a, &e) == 0) touch(&a);
        }
        mc_npz_close(&z);
    }
    mc_dr_emb emb;
    if (mc_dr_parse_npz(data, size, "fuzz.npz", &emb, &e) == 0) mc_dr_emb_free(&emb);
    else if (!e.msg[0]) abort();
    if (mc_dr_parse_pth_gz(data, size, "fuzz.pth.gz", &emb, &e) == 0) mc_dr_emb_free(&emb);
    else if (!e.msg[0]) abort();
    return 0;
}
