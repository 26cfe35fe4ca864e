/* fmnist_shards.c - Fashion-MNIST IDX files -> WebDataset image-caption shards. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "experiment/fmnist.h"
#include "image/encode_png.h"
#include "io/idx.h"
#include "io/wds.h"

static int make_dir(const char *path, mc_err *e) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
        return mc_fail(e, MC_E_IO, "%s: exists and is not a directory", path);
    }
    return mc_fail(e, MC_E_IO, "%s: cannot create directory: %s", path, strerror(errno));
}

/* Samples [first, first + n) of an image/label pair into out_dir/NAME-%05d.tar. */
static int write_split(const mc_fmnist_shards_opts *o, const char *name, mc_fmnist_split split, const mc_idx *images,
                       const mc_idx *labels, int first, int n, mc_fmnist_split_stats *st, mc_err *e) {
    const int per = o->per_shard > 0 ? o->per_shard : 5000, side = (int)images->dims[1], side2 = (int)images->dims[2];
    if (side != MC_FMNIST_SIDE || side2 != MC_FMNIST_SIDE)
        return mc_fail(e, MC_E_FORMAT, "%s: images are %dx%d, Fashion-MNIST's are 28x28", o->data_dir, side, side2);
    memset(st, 0, sizeof *st);
    int r = 0;
    for (int s0 = 0; s0 < n && !r; s0 += per) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s-%05d.tar", o->out_dir, name, st->shards);
        mc_tar_writer w;
        if ((r = mc_tar_writer_open_atomic(&w, path, e))) break;
        for (int i = s0; i < n && i < s0 + per && !r; i++) {
            int k = first + i, label = labels->data[k];
            const uint8_t *px = images->data + (size_t)k * MC_FMNIST_SIDE * MC_FMNIST_SIDE;
            char caption[MC_FMNIST_CAPTION_MAX], cls[16], key[16];
            mc_fmnist_caption(o->seed, split, (uint64_t)k, label, px, caption, NULL);
            snprintf(cls, sizeof cls, "%d", label);
            snprintf(key, sizeof key, "%05d", k);
            unsigned char *png;
            size_t png_len;
            if ((r = mc_png_encode(px, MC_FMNIST_SIDE, MC_FMNIST_SIDE, 1, &png, &png_len, e))) break;
            mc_wds_member m[3] = {{"cls", (const unsigned char *)cls, strlen(cls)},
                                  {"png", png, png_len},
                                  {"txt", (const unsigned char *)caption, strlen(caption)}};
            r = mc_wds_write_sample(&w, key, m, 3, e);
            free(png);
            mc_caption_quality_add(&st->quality, caption, strlen(caption), label);
            st->samples++;
        }
        if (r) {
            mc_tar_writer_abort(&w);
            break;
        }
        if ((r = mc_tar_writer_finish(&w, e))) break;
        struct stat fs;
        if (stat(path, &fs) == 0) st->bytes += (long long)fs.st_size;
        st->shards++;
    }
    /* shards of an earlier, larger conversion into the same folder would read as part of this
     * split: remove the ones past the last written (they are contiguous by construction) */
    for (int k = st->shards; !r; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s-%05d.tar", o->out_dir, name, k);
        if (unlink(path) != 0) break;
    }
    return r;
}

int mc_fmnist_write_shards(const mc_fmnist_shards_opts *o, mc_fmnist_shards_stats *st, mc_err *e) {
    memset(st, 0, sizeof *st);
    if (o->heldout < 0 || o->limit < 0) return mc_fail(e, MC_E_ARG, "fmnist shards: negative held-out or limit");
    char ip[4096], lp[4096];
    mc_idx tr_im = {0}, tr_lb = {0}, te_im = {0}, te_lb = {0};
    snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte.gz", o->data_dir);
    snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte.gz", o->data_dir);
    int r = mc_idx_load_labelled(ip, lp, MC_FMNIST_CLASSES, &tr_im, &tr_lb, e);
    if (!r) {
        snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte.gz", o->data_dir);
        snprintf(lp, sizeof lp, "%s/t10k-labels-idx1-ubyte.gz", o->data_dir);
        r = mc_idx_load_labelled(ip, lp, MC_FMNIST_CLASSES, &te_im, &te_lb, e);
    }
    if (!r && (tr_im.ndim != 3 || te_im.ndim != 3))
        r = mc_fail(e, MC_E_FORMAT, "%s: the image files are not [N, 28, 28]", o->data_dir);
    int n_train = r ? 0 : (int)tr_im.dims[0], n_test = r ? 0 : (int)te_im.dims[0];
    int heldout = o->heldout;
    if (!r && heldout >= n_train)
        r = mc_fail(e, MC_E_ARG, "%s: a held-out slice of %d leaves no training images (%d)", o->data_dir, heldout, n_train);
    if (!r) r = make_dir(o->out_dir, e);
    int train_n = n_train - heldout, held_n = heldout, test_n = n_test;
    if (o->limit) {
        train_n = train_n < o->limit ? train_n : o->limit;
        held_n = held_n < o->limit ? held_n : o->limit;
        test_n = test_n < o->limit ? test_n : o->limit;
    }
    if (!r) r = write_split(o, "train", MC_FMNIST_TRAIN, &tr_im, &tr_lb, 0, train_n, &st->train, e);
    /* the held-out slice is the *last* heldout training images, whatever the limit */
    if (!r && held_n) r = write_split(o, "heldout", MC_FMNIST_TRAIN, &tr_im, &tr_lb, n_train - heldout, held_n, &st->heldout, e);
    if (!r) r = write_split(o, "test", MC_FMNIST_TEST, &te_im, &te_lb, 0, test_n, &st->test, e);
    mc_idx_free(&tr_im), mc_idx_free(&tr_lb), mc_idx_free(&te_im), mc_idx_free(&te_lb);
    return r;
}
