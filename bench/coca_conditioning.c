/* coca_conditioning CONFIG.json CHECKPOINT SHARDS [--batch B] [--batches K]
 * How much a trained CoCa captioner's captions depend on the image (a diagnosis, not a speed
 * benchmark; docs/EXPERIMENT.md, "Captioner"). Over K batches of B image-caption pairs of the
 * shards (the training loader: RandomResizedCrop (0.9, 1), open_clip's mean/std):
 *   - the teacher-forced caption loss per token (CoCaLoss's caption term at weight 1) with each
 *     caption's own image and with the batch's images rolled by one (mismatched: another image,
 *     the same item about 1 time in 10), and the gap per caption (nats the image is worth);
 *   - on the first batch, the gradient norm of the image tower (visual.*) from the caption loss
 *     alone (it reaches the image only through the decoder's cross-attention) and from the
 *     contrastive loss alone, beside the other towers'.
 * Threads: OMP_NUM_THREADS. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment.h"
#include "io/checkpoint.h"
#include "models/coca_train.h"
#include "text/tokenizer.h"
#include "train/coca_step.h"
#include "train/loader.h"

/* the gradient norm of the store's parameters whose name starts with prefix (and not with
 * except, when given) */
static double grad_norm(const mc_param_store *s, const char *prefix, const char *except) {
    double ss = 0;
    for (int i = 0; i < s->count; i++) {
        const mc_param *p = &s->params[i];
        if (strncmp(p->name, prefix, strlen(prefix)) || (except && !strncmp(p->name, except, strlen(except)))) continue;
        const float *g = s->grad + p->offset;
        for (size_t k = 0; k < p->numel; k++) ss += (double)g[k] * g[k];
    }
    return sqrt(ss);
}

static void print_grads(const char *what, const mc_param_store *s) {
    printf("  grad norms (%s): visual %.4g  text %.4g  text_decoder %.4g\n", what, grad_norm(s, "visual.", NULL),
           grad_norm(s, "text.", NULL), grad_norm(s, "text_decoder.", NULL));
}

int main(int argc, char **argv) {
    const char *cfg_path = NULL, *ckpt = NULL, *spec = NULL;
    int B = 32, K = 16;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batches") && i + 1 < argc) K = atoi(argv[++i]);
        else if (argv[i][0] == '-') cfg_path = NULL, i = argc;
        else if (!cfg_path) cfg_path = argv[i];
        else if (!ckpt) ckpt = argv[i];
        else spec = argv[i];
    }
    if (!cfg_path || !ckpt || !spec || B < 2 || K < 1) {
        fprintf(stderr, "usage: coca_conditioning CONFIG.json CHECKPOINT SHARDS [--batch B] [--batches K]\n");
        return 2;
    }
    mc_err e = {0};
    mc_oc_cfg cfg;
    mc_tensor_map w;
    mc_tensor_map_init(&w);
    mc_coca_trainable t;
    if (mc_oc_cfg_load(cfg_path, &cfg, &e) || mc_checkpoint_load(ckpt, &w, &e) ||
        mc_coca_trainable_init(&t, &cfg, &w, &e)) {
        fprintf(stderr, "coca_conditioning: %s\n", e.msg);
        return 1;
    }
    mc_tokenizer *tok = mc_tokenizer_load_builtin(&e);
    mc_coca_train_config tc = {.adamw = {0.9f, 0.98f, 1e-6f, 0.2f}, .grad_clip = 0, .clip_weight = 1, .caption_weight = 1};
    mc_coca_trainer tr;
    int R = cfg.vision.image_size;
    mc_loader_config lc = {.spec = spec, .batch = B, .image_size = R, .context = cfg.text.context_length,
                           .tokenizer = tok, .threads = 1, .seed = 1, .world = 1};
    mc_loader *ld = NULL;
    mc_batch b;
    memset(&b, 0, sizeof b);
    if (!tok || mc_coca_trainer_init(&tr, &t, &tc, B, &e) || mc_loader_open(&ld, &lc, &e) || mc_batch_alloc(&b, ld, &e)) {
        fprintf(stderr, "coca_conditioning: %s\n", e.msg);
        return 1;
    }
    size_t img = (size_t)3 * R * R;
    float *rolled = malloc(sizeof(float) * img * (size_t)B);
    double own = 0, other = 0, clip_own = 0;
    long labels = 0;
    for (int k = 0; k < K; k++) {
        if (mc_loader_next(ld, &b, &e)) {
            fprintf(stderr, "coca_conditioning: %s\n", e.msg);
            return 1;
        }
        for (int i = 0; i < B; i++) mc_augment_normalize(b.images + img * i, (size_t)R * R, cfg.mean, cfg.std);
        for (int i = 0; i < B; i++) memcpy(rolled + img * i, b.images + img * ((i + 1) % B), sizeof(float) * img);
        mc_coca_losses lo;
        const float *ims[2] = {b.images, rolled};
        for (int pass = 0; pass < 2; pass++) {
            mc_tape_reset(&tr.tape), mc_tape_reset(&tr.work);
            if (mc_coca_train_forward(&tr.ctx, &t.m, &tr.st, ims[pass], b.tokens, B, &e) ||
                mc_coca_loss_grad(&t.m, &tr.st, *t.logit_scale, 1.0, 1.0, 1.f, tr.scratch, &lo, NULL, NULL, NULL, NULL,
                                  &e)) {
                fprintf(stderr, "coca_conditioning: %s\n", e.msg);
                return 1;
            }
            if (pass == 0) own += lo.caption * tr.st.n_rows, clip_own += lo.clip, labels += tr.st.n_rows;
            else other += lo.caption * tr.st.n_rows;
        }
        if (k == 0) { /* gradients: caption loss alone, contrastive loss alone */
            for (int which = 0; which < 2; which++) {
                tr.cfg.clip_weight = which ? 1.0 : 0.0, tr.cfg.caption_weight = which ? 0.0 : 2.0;
                mc_grad_zero(&t.store);
                if (mc_coca_trainer_forward_backward(&tr, b.images, b.tokens, 1.f, &lo, &e)) {
                    fprintf(stderr, "coca_conditioning: %s\n", e.msg);
                    return 1;
                }
                print_grads(which ? "contrastive loss only" : "caption loss x 2 only", &t.store);
            }
        }
    }
    double per = (double)labels / ((double)K * B);
    printf("%s on %s: %d x %d pairs, %.1f labels per caption, contrastive loss %.4f (chance %.4f)\n", ckpt, spec, K, B,
           per, clip_own / K, log((double)B));
    printf("  caption loss per token: own image %.4f  rolled images %.4f  gap %.4f per token, %.3f nats per caption\n",
           own / labels, other / labels, (other - own) / labels, (other - own) / ((double)K * B));
    free(rolled);
    mc_batch_free(&b);
    mc_loader_close(ld);
    mc_coca_trainer_free(&tr);
    mc_coca_trainable_free(&t);
    mc_tokenizer_free(tok);
    return 0;
}
