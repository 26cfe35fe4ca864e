/* eval.h - evaluation of the weights being trained (`mobileclip train --eval-every N --eval SPEC`).
 *
 * The evaluation sets are read once (images kept encoded or as IDX bytes); each evaluation
 * copies the trainer's parameter store into a second model of the same configuration, derives
 * its inference plan (mc_clip_plan_build: folded form, BatchNorm running statistics, as PyTorch's
 * eval mode) and measures through the public API's metrics (mobileclip_classifier_build,
 * mobileclip_eval_zeroshot, mobileclip_eval_retrieval). The trained model is not touched, so
 * evaluating changes nothing in the training run (resume stays bit-exact).
 *
 * SPEC (one set; up to MC_TRAIN_EVAL_MAX_SETS):
 *   fmnist:DIR     Fashion-MNIST test split (DIR/t10k-{images-idx3,labels-idx1}-ubyte.gz):
 *                  zero-shot top-1 over its 10 class names
 *   folders:DIR    one sub-folder of images per class (byte order; the folder names are the
 *                  class names): zero-shot top-1
 *   shards:SPEC    WebDataset shards (braceexpand): an image member (jpg/jpeg/png/webp) per
 *                  sample; its 'txt' captions (one per line) give image->text and text->image
 *                  R@1; with classes (mc_train_eval_options.classes) and a 'cls' member in
 *                  every sample, zero-shot top-1 too
 * A metric a set does not have is NaN (an empty field in eval.csv).
 */
#ifndef MC_TRAIN_EVAL_H
#define MC_TRAIN_EVAL_H

#include "core/error.h"
#include "models/clip.h"

#define MC_TRAIN_EVAL_MAX_SETS 8

typedef struct mc_train_eval_options {
    int limit;              /* images per set, spread evenly (the first N of shards); 0: all */
    const char *templates;  /* "imagenet" (CLIP's 80, default), "simple", or a file, one per line */
    const char *classes;    /* class names for shards: a file (one per line) or "fmnist"; NULL: none */
    int batch;              /* images per model call (0: 16) */
} mc_train_eval_options;

typedef struct mc_train_eval_result {
    char name[32];          /* the set's kind and position: "fmnist", "shards.2" */
    int images, texts;
    double top1, i2t_r1, t2i_r1;  /* in [0, 1]; NaN when the set has no such metric */
} mc_train_eval_result;

typedef struct mc_train_eval mc_train_eval;

/* Reads the sets of specs[0..n) for a model of configuration cfg. Errors name the spec or the
 * file and the problem. */
int mc_train_eval_open(mc_train_eval **out, const char *const *specs, int n, const mc_train_eval_options *o,
                       const mc_clip_config *cfg, mc_err *e);
int mc_train_eval_count(const mc_train_eval *ev);
/* Evaluates the current parameters of clip (same configuration) on every set: res[count]. */
int mc_train_eval_run(mc_train_eval *ev, const mc_clip *clip, mc_train_eval_result *res, mc_err *e);
void mc_train_eval_close(mc_train_eval *ev);

#endif
