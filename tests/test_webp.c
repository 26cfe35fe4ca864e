/* WebP decoding against Pillow.
 *
 * tests/data/shards/X.webp were written by Pillow (lossy, lossless, with alpha, animated) and
 * the .rgb next to each is Pillow's Image.open(f).convert('RGB') (tools/shards/gen_shard_refs.py).
 * mc_image_decode (sniffing the content, whatever the name) must give the same bytes; every
 * truncation and a corrupted RIFF payload give a one-line error naming the input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/files.h"
#include "common/test_util.h"
#include "image/image.h"

#define DATA MC_TEST_DATA_DIR "/shards/"

int main(void) {
    const char *names[] = {"lossy", "lossless", "alpha_lossy", "alpha_lossless", "anim"};
    for (int i = 0; i < 5; i++) {
        char p[512], q[512];
        snprintf(p, sizeof p, DATA "%s.webp", names[i]);
        snprintf(q, sizeof q, DATA "%s.rgb", names[i]);
        size_t n, m;
        unsigned char *webp = mc_test_read(p, &n), *want = mc_test_read(q, &m);
        mc_image im;
        mc_err e;
        int rc = mc_image_decode(webp, n, "pretend.jpg", &im, &e);
        CHECK(rc == 0, "%s: %s", p, e.msg);
        if (!rc) {
            CHECK(im.w == 37 && im.h == 23 && m == (size_t)37 * 23 * 3, "%s: size %dx%d", p, im.w, im.h);
            int maxd = 0;
            for (size_t k = 0; k < m && k < (size_t)im.w * im.h * 3; k++) {
                int d = abs((int)im.rgb[k] - (int)want[k]);
                if (d > maxd) maxd = d;
            }
            CHECK(maxd == 0, "%s: max |diff| %d from Pillow", p, maxd);
            printf("  %-16s %dx%d, max |diff| from Pillow %d\n", names[i], im.w, im.h, maxd);
            mc_image_free(&im);
        }
        int silent = 0;
        for (size_t cut = 1; cut < n; cut += 3) {
            if (mc_image_decode(webp, cut, "cut.webp", &im, &e) == 0) silent++, mc_image_free(&im);
            else if (!strstr(e.msg, "cut.webp")) silent++;
        }
        CHECK(silent == 0, "%s: %d truncations decoded or unnamed", p, silent);
        unsigned char *cp = malloc(n);
        for (size_t k = 12; k < n; k += 5) { /* corrupt payload bytes: error or some image, never a crash */
            memcpy(cp, webp, n);
            cp[k] ^= 0xa5;
            if (mc_image_decode(cp, n, "bad.webp", &im, &e) == 0) mc_image_free(&im);
        }
        free(cp);
        free(webp);
        free(want);
    }
    mc_image im;
    mc_err e;
    CHECK(mc_image_decode("RIFF\x10\0\0\0WEBPVP8 junkjunk", 24, "j.webp", &im, &e) < 0 && strstr(e.msg, "j.webp: corrupt"), "junk: %s",
          e.msg);
    return mc_test_finish("test_webp");
}
