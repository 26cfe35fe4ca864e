/* fuzz_image.c - libFuzzer target: JPEG/PNG/WebP decoding, then the reference preprocessing.
 *
 * Decoding uses a 4 Mpixel limit (mc_image_decode_limited) so that tiny inputs claiming big
 * images cannot exhaust the fuzzer's memory; the decoders' checks are the same as in
 * production. On success the image is preprocessed at R = 16 (resize + crop + ToTensor),
 * which exercises both upscaling and heavy downscaling paths, and again with the bicubic
 * filter of the teachers' eval transform (negative lobes: outputs must stay clamped).
 *
 * Build: CC=clang cmake -S . -B build-fuzz -DMC_FUZZ=ON && cmake --build build-fuzz
 * Run:   mkdir -p corpus && cp ../shared/images/synthetic_t*.{png,jpg} corpus/ &&
 *        build-fuzz/fuzz_image corpus fuzz/seeds/image -max_len=16384 -max_total_time=600
 * Seeds (fuzz/seeds/image): tiny PNGs of every colour type/depth (some Adam7) and JPEGs
 * (gray, CMYK, YCCK, progressive 4:2:0, restart markers) and WebPs (lossy, lossless+alpha, animated). The system libjpeg/libpng carry no
 * coverage instrumentation; for deeper runs link this file against libjpeg-turbo 2.1.5 and
 * libpng 1.6.39 built from source with -fsanitize=fuzzer-no-link,address.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "image/preprocess.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mc_image im;
    mc_err e = {0};
    if (mc_image_decode_limited(data, size, "fuzz", 4 << 20, &im, &e) != 0) {
        if (im.rgb != NULL || e.msg[0] == 0) abort(); /* failures leave no image and say why */
        return 0;
    }
    if (im.w < 1 || im.h < 1 || !im.rgb) abort();
    enum { R = 16 };
    float chw[3 * R * R];
    int r = mc_image_preprocess(&im, R, chw, &e);
    /* Only extreme aspect ratios may be refused (the resized long side over the limit). */
    if (r != 0 && !((int64_t)R * (im.w > im.h ? im.w : im.h) / (im.w > im.h ? im.h : im.w) > MC_IMAGE_MAX_SIDE))
        abort();
    for (int i = 0; r == 0 && i < 3 * R * R; i++)
        if (!(chw[i] >= 0.0f && chw[i] <= 1.0f)) abort();
    mc_image crop = {0};
    if ((mc_image_eval_crop_u8(&im, R, MC_RESAMPLE_BICUBIC, &crop, &e) == 0) != (r == 0)) abort();
    if (crop.rgb && (crop.w != R || crop.h != R)) abort();
    mc_image_free(&crop);
    mc_image_free(&im);
    return 0;
}
