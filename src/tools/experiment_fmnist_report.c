/* experiment_fmnist_report.c - the outputs of `experiment fmnist`: results.json (for programs),
 * report.md (for people), accuracy.png (zero-shot top-1 against seen samples) and the table on
 * stdout. Everything printed is a figure of mc_xp_state; nothing is computed here but the
 * learning-efficiency ratio (mc_xp_efficiency). */
#include <stdio.h>
#include <string.h>

#include "mobileclip.h"
#include "io/atomic_file.h"
#include "tools/cli.h"
#include "tools/experiment_fmnist_stages.h"
#include "tools/plot.h"

void mc_xp_efficiency(const mc_xp_state *s, int k, long long *seen_at, double *ratio, double *gain) {
    const mc_xp_model *p = &s->runs[0], *m = &s->runs[k];
    *seen_at = -1, *ratio = 0, *gain = 0;
    if (!p->ran || !m->ran || !p->n_evals || !m->n_evals) return;
    const mc_xp_eval *pf = &p->ev[p->n_evals - 1];
    for (int i = 0; i < m->n_evals; i++)
        if (m->ev[i].test_top1 >= pf->test_top1) {
            *seen_at = m->ev[i].seen;
            *ratio = (double)pf->seen / (double)m->ev[i].seen;
            break;
        }
    *gain = m->ev[m->n_evals - 1].test_top1 - pf->test_top1;
}

static double frac(const mc_caption_quality *q, int kind) { return q->n ? (double)q->kind[kind] / (double)q->n : 0.0; }

/* ---- results.json ---- */

static void json_quality(FILE *f, const mc_caption_quality *q) {
    fprintf(f, "{\"captions\": %lld", q->n);
    for (int k = 0; k < 4; k++) fprintf(f, ", \"%s\": %.6f", mc_caption_kind_names[k], frac(q, k));
    fprintf(f, "}");
}

static void json_split(FILE *f, const char *name, const char *spec, const mc_fmnist_split_stats *s, int last) {
    fprintf(f, "    \"%s\": {\"shards\": \"%s\", \"samples\": %d, \"shard_files\": %d, \"bytes\": %lld, "
               "\"bytes_per_sample\": %.1f}%s\n",
            name, spec, s->samples, s->shards, s->bytes, s->samples ? (double)s->bytes / s->samples : 0.0, last ? "" : ",");
}

static void json_eval(FILE *f, const mc_xp_eval *v, const char *indent) {
    fprintf(f, "%s{\"seen_samples\": %lld, \"test_images\": %d, \"zeroshot_top1\": %.6f, \"zeroshot_top5\": %.6f, "
               "\"heldout_images\": %d, \"heldout_zeroshot_top1\": %.6f, \"retrieval_pairs\": %d, \"i2t_r1\": %.6f, "
               "\"t2i_r1\": %.6f, \"i2t_r5\": %.6f, \"t2i_r5\": %.6f, \"logit_scale\": %.6f}",
            indent, v->seen, v->n_test, v->test_top1, v->test_top5, v->n_heldout, v->heldout_top1, v->n_retrieval, v->i2t_r1,
            v->t2i_r1, v->i2t_r5, v->t2i_r5, v->logit_scale);
}

static void json_model(FILE *f, const mc_xp_model *m, int teacher) {
    fprintf(f, "    {\"name\": \"%s\", ", m->name);
    if (teacher) fprintf(f, "\"lambda\": null, ");
    else fprintf(f, "\"lambda\": %.1f, \"data_kind\": \"%s\", ", m->lambda, m->data_kind);
    fprintf(f, "\"config\": \"%s\", \"checkpoint\": %s%s%s, \"seed\": %llu, \"ran\": %s, ", m->config, m->ran ? "\"" : "",
            m->ran ? m->checkpoint : "null", m->ran ? "\"" : "", (unsigned long long)m->seed, m->ran ? "true" : "false");
    if (!m->ran) {
        fprintf(f, "\"not_run\": ");
        mc_json_print_string(f, m->why_not);
        fprintf(f, ", ");
    }
    fprintf(f, "\"steps\": %lld, \"batch\": %lld, \"seen_samples\": %lld, \"train_seconds\": %.3f, \"ms_per_step\": %.3f",
            m->ran ? m->steps : 0, m->batch, m->ran ? m->seen : 0, m->train_seconds,
            m->ran && m->steps && !m->reused ? 1000.0 * m->train_seconds / (double)m->steps : 0.0);
    if (teacher) fprintf(f, ", \"reused\": %s", m->reused ? "true" : "false");
    fprintf(f, ",\n     \"evaluations\": [");
    for (int i = 0; i < m->n_evals; i++) {
        fprintf(f, "%s", i ? ",\n" : "\n");
        json_eval(f, &m->ev[i], "       ");
    }
    fprintf(f, "%s]}", m->n_evals ? "\n     " : "");
}

int mc_xp_write_results(const mc_xp_state *s, const char *path, mc_err *e) {
    mc_atomic_file af;
    int r = mc_atomic_open(&af, path, e), nt;
    if (r) return r;
    FILE *f = af.f;
    const mc_fmnist_run_opts *o = s->o;
    fprintf(f, "{\n  \"experiment\": \"fashion-mnist learning efficiency (issue 8)\",\n");
    fprintf(f, "  \"mode\": \"%s\",\n  \"seed\": %llu,\n  \"samples_per_split_limit\": %d,\n", o->quick ? "quick" : "full",
            (unsigned long long)o->seed, s->limit);
    fprintf(f, "  \"data\": {\n    \"source\": ");
    mc_json_print_string(f, o->data);
    fprintf(f, ",\n");
    json_split(f, "train", s->specs[0], &s->st.train, 0);
    json_split(f, "heldout", s->specs[1], &s->st.heldout, 0);
    json_split(f, "test", s->specs[2], &s->st.test, 1);
    fprintf(f, "  },\n  \"caption_process\": {\"p_wrong\": %.2f, \"p_none\": %.2f, \"p_mixed\": %.2f, "
               "\"p_wrong_colour\": %.2f, \"documented_in\": \"docs/EXPERIMENT.md\"},\n",
            MC_FMNIST_P_WRONG, MC_FMNIST_P_NONE, MC_FMNIST_P_MIXED, MC_FMNIST_P_WRONG_COLOUR);
    fprintf(f, "  \"real_captions\": {\"train\": ");
    json_quality(f, &s->st.train.quality);
    fprintf(f, ", \"heldout\": ");
    json_quality(f, &s->st.heldout.quality);
    fprintf(f, "},\n  \"plan\": {\"teacher_samples\": %lld, \"teacher_batch\": %d, \"student_samples\": %lld, "
               "\"student_batch\": %d, \"num_aug\": %d, \"num_syn\": %d, \"evaluation_points\": %d, \"evaluation_images\": %d, "
               "\"teacher_lr\": %s, \"student_lr\": %s, \"wd\": 0.2, \"warmup_steps\": %s, \"grad_clip\": 1.0, "
               "\"schedule\": \"cosine\"},\n",
            s->teacher_samples, s->teacher_batch, s->student_samples, s->student_batch, s->num_aug, s->num_syn, s->n_points,
            s->n_eval, s->teacher_lr, s->student_lr, s->warmup);
    fprintf(f, "  \"teachers\": [\n");
    for (int k = 0; k < MC_XP_TEACHERS; k++) {
        json_model(f, &s->teachers[k], 1);
        fprintf(f, "%s\n", k + 1 < MC_XP_TEACHERS ? "," : "");
    }
    fprintf(f, "  ],\n  \"captioner\": {\"ran\": %s, ", s->captioner_ran ? "true" : "false");
    if (!s->captioner_ran) {
        fprintf(f, "\"not_run\": ");
        mc_json_print_string(f, s->captioner_why);
        fprintf(f, ", \"synthetic_slot\": \"the real caption\", ");
    } else {
        fprintf(f, "\"config\": \"configs/fmnist_captioner.json\", \"checkpoint\": \"captioner/model.pt\", "
                   "\"sampling\": \"top_p 0.9\", \"seq_len\": %d, \"captions_per_image\": %d, ",
                s->captioner_seq_len, s->num_syn);
    }
    fprintf(f, "\"steps\": %lld, \"batch\": %d, \"lr\": %s, \"seed\": %llu, \"reused\": %s, ", s->captioner_steps,
            s->captioner_batch, s->captioner_lr, (unsigned long long)(s->o->seed + 3), s->captioner_reused ? "true" : "false");
    fprintf(f, "\"train_seconds\": %.3f, \"caption_seconds\": %.3f},\n", s->captioner_seconds, s->caption_seconds);
    fprintf(f, "  \"synthetic_captions\": ");
    if (s->captioner_ran) json_quality(f, &s->syn_quality);
    else fprintf(f, "null");
    fprintf(f, ",\n  \"reinforced\": {\"ran\": %s, ", s->reinforce_ran ? "true" : "false");
    if (!s->reinforce_ran) {
        fprintf(f, "\"not_run\": ");
        mc_json_print_string(f, s->reinforce_why);
        fprintf(f, ", ");
    }
    fprintf(f, "\"shards\": \"reinforced/%s\", \"shard_files\": %d, \"bytes\": %lld, \"bytes_per_sample\": %.1f, "
               "\"reused\": %s, \"wall_seconds\": %.3f},\n",
            s->specs[0] + 7, s->reinforced_files, s->reinforced_bytes,
            s->st.train.samples ? (double)s->reinforced_bytes / s->st.train.samples : 0.0,
            s->reinforce_reused ? "true" : "false", s->reinforce_seconds);
    fprintf(f, "  \"class_names\": [");
    for (int c = 0; c < MC_FMNIST_CLASSES; c++) fprintf(f, "%s\"%s\"", c ? ", " : "", mc_fmnist_class_names[c]);
    fprintf(f, "],\n  \"templates\": [");
    const char *const *t = mobileclip_imagenet_templates(&nt);
    for (int k = 0; k < nt; k++) {
        fprintf(f, "%s", k ? ", " : "");
        mc_json_print_string(f, t[k]);
    }
    fprintf(f, "],\n  \"untrained\": {\"config\": \"configs/%s.json\", \"checkpoint\": \"checkpoints/student_random.pt\", "
               "\"init_seed\": %llu, \"evaluation\":\n",
            o->student, (unsigned long long)o->seed);
    json_eval(f, &s->untrained, "    ");
    fprintf(f, "},\n  \"runs\": [\n");
    for (int k = 0; k < MC_XP_RUNS; k++) {
        json_model(f, &s->runs[k], 0);
        fprintf(f, "%s\n", k + 1 < MC_XP_RUNS ? "," : "");
    }
    fprintf(f, "  ],\n  \"efficiency\": [");
    for (int k = 2; k < MC_XP_RUNS; k++) {
        long long at;
        double ratio, gain;
        mc_xp_efficiency(s, k, &at, &ratio, &gain);
        fprintf(f, "%s\n    {\"run\": \"%s\", \"seen_to_reach_plain_final\": %lld, \"ratio\": %.4f, "
                   "\"top1_gain_at_plain_budget\": %.6f}",
                k > 2 ? "," : "", s->runs[k].name, at, ratio, gain);
    }
    fprintf(f, "\n  ],\n  \"timings\": {\n    \"shards_seconds\": %.3f,\n    \"student_init_seconds\": %.3f,\n"
               "    \"untrained_eval_seconds\": %.3f,\n    \"teachers_seconds\": %.3f,\n    \"captioner_seconds\": %.3f,\n"
               "    \"caption_seconds\": %.3f,\n    \"reinforce_seconds\": %.3f,\n"
               "    \"students_seconds\": %.3f,\n    \"total_seconds\": %.3f,\n",
            s->sec_shards, s->sec_init, s->sec_untrained_eval, s->sec_teachers, s->captioner_seconds, s->caption_seconds,
            s->reinforce_seconds, s->sec_students, s->sec_total);
    /* CPU seconds (user + system, all threads): what a stage costs on a shared machine */
    fprintf(f, "    \"teachers_cpu_seconds\": %.3f,\n    \"captioner_cpu_seconds\": %.3f,\n    \"caption_cpu_seconds\": %.3f,\n"
               "    \"reinforce_cpu_seconds\": %.3f,\n    \"students_cpu_seconds\": %.3f,\n    \"total_cpu_seconds\": %.3f\n  }\n}\n",
            s->cpu_teachers, s->captioner_cpu, s->caption_cpu, s->cpu_reinforce, s->cpu_students, s->cpu_total);
    return mc_atomic_commit(&af, e);
}

/* ---- report.md ---- */

static void md_quality_row(FILE *f, const char *what, const mc_caption_quality *q) {
    fprintf(f, "| %s | %lld | %.4f | %.4f | %.4f | %.4f |\n", what, q->n, frac(q, 0), frac(q, 1), frac(q, 2), frac(q, 3));
}

static void md_eval_row(FILE *f, const char *name, const char *lambda, const mc_xp_eval *v) {
    fprintf(f, "| %s | %s | %lld | %.4f | %.4f | %.4f | %.4f | %.4f |\n", name, lambda, v->seen, v->test_top1, v->test_top5,
            v->heldout_top1, v->i2t_r1, v->t2i_r1);
}

static double ms_per_step(const mc_xp_model *m) {
    return m->ran && m->steps && !m->reused ? 1000.0 * m->train_seconds / (double)m->steps : 0.0;
}

int mc_xp_write_report(const mc_xp_state *s, const char *path, mc_err *e) {
    mc_atomic_file af;
    int r = mc_atomic_open(&af, path, e);
    if (r) return r;
    FILE *f = af.f;
    const mc_fmnist_run_opts *o = s->o;
    fprintf(f, "# Fashion-MNIST learning-efficiency experiment: %s run, seed %llu\n\n", o->quick ? "quick" : "full",
            (unsigned long long)o->seed);
    fprintf(f, "Every figure below was measured by this run (`mobileclip experiment fmnist%s%s`); results.json holds "
               "the same figures. The test set is used for evaluation only; the schedule was fixed beforehand and "
               "checked on the held-out slice (last 5000 training images), never tuned on the test set.\n\n",
            o->quick ? " --quick" : "", s->limit && !o->quick ? " --limit N" : "");
    fprintf(f, "## Data\n\nSource: `%s`. Shards (PNG 28x28 grey, noisy caption, class for evaluation only):\n\n"
               "| split | samples | shards | bytes per sample | spec |\n|---|---|---|---|---|\n",
            o->data);
    const char *names[3] = {"train", "heldout", "test"};
    const mc_fmnist_split_stats *sp[3] = {&s->st.train, &s->st.heldout, &s->st.test};
    for (int k = 0; k < 3; k++)
        fprintf(f, "| %s | %d | %d | %.0f | `%s` |\n", names[k], sp[k]->samples, sp[k]->shards,
                sp[k]->samples ? (double)sp[k]->bytes / sp[k]->samples : 0, s->specs[k]);
    fprintf(f, "\n## Captions\n\nReal captions: the seeded noisy alt-text process of docs/EXPERIMENT.md (documented "
               "rates wrong %.2f, none %.2f, mixed %.2f). Measured by class-synonym matching:\n\n"
               "| captions | n | right | wrong | none | mixed |\n|---|---|---|---|---|---|\n",
            MC_FMNIST_P_WRONG, MC_FMNIST_P_NONE, MC_FMNIST_P_MIXED);
    md_quality_row(f, "real, train", &s->st.train.quality);
    md_quality_row(f, "real, held-out", &s->st.heldout.quality);
    if (s->captioner_ran) {
        md_quality_row(f, "synthetic (CoCa, top-p 0.9), train", &s->syn_quality);
        fprintf(f, "\nSynthetic captions: the CoCa captioner `configs/fmnist_captioner.json` trained by `mobileclip train` "
                   "on the train shards (%lld steps of %d, AdamW lr %s, seed %llu%s, cached under `captioner/`), then "
                   "`mobileclip caption --method top_p --top-p 0.9 --num %d --seq-len %d` over every train image "
                   "(`syn.jsonl`; DataCompDR's sampling, never the labels).\n",
                s->captioner_steps, s->captioner_batch, s->captioner_lr, (unsigned long long)(o->seed + 3),
                s->captioner_reused ? ", reused" : "", s->num_syn, s->captioner_seq_len);
    } else
        fprintf(f, "| synthetic | - | not run | | | |\n\n**Captioner not run**: %s. The reinforced shards carry the "
                   "real caption in the synthetic slot, so the DR runs below distil the teachers but see no synthetic "
                   "caption, and the run \"real + synthetic, lambda 0\" is not run.\n",
                s->captioner_why);
    fprintf(f, "\n## Teachers\n\nTrained by `mobileclip train --data-kind plain --lambda 0` on the train shards "
               "(%lld samples, batch %d, AdamW lr %s, wd 0.2, %s warmup steps, cosine), cached under `teachers/` (`--reuse`).\n\n"
               "| teacher | seed | steps | ms per step | zero-shot top-1 (test) | top-5 | top-1 (held-out) | I->T R@1 | T->I R@1 |\n"
               "|---|---|---|---|---|---|---|---|---|\n",
            s->teacher_samples, s->teacher_batch, s->teacher_lr, s->warmup);
    for (int k = 0; k < MC_XP_TEACHERS; k++) {
        const mc_xp_model *t = &s->teachers[k];
        if (!t->ran) {
            fprintf(f, "| %s | %llu | - | - | not run: %s | | | | |\n", t->name, (unsigned long long)t->seed, t->why_not);
            continue;
        }
        const mc_xp_eval *v = &t->ev[0];
        fprintf(f, "| `%s` | %llu | %lld | %s%.1f | %.4f | %.4f | %.4f | %.4f | %.4f |\n", t->name, (unsigned long long)t->seed,
                t->steps, t->reused ? "reused; " : "", ms_per_step(t), v->test_top1, v->test_top5, v->heldout_top1, v->i2t_r1,
                v->t2i_r1);
    }
    fprintf(f, "\n## Reinforcement\n\n");
    if (s->reinforce_ran)
        fprintf(f, "`mobileclip reinforce`: %d augmentations per sample (`configs/reinforce_aug.json`: RandomResizedCrop "
                   "scale 0.9-1 at 32 px, the student's and the teachers' size, RandAugment at p 0), the two teachers' "
                   "embeddings (128 + 128), %s; "
                   "images kept. %d shard files, %lld bytes: **%.0f bytes per sample** (the plain shards: %.0f), "
                   "%.1f s%s.\n",
                s->num_aug, s->captioner_ran ? "the synthetic captions" : "the real caption in the synthetic slot",
                s->reinforced_files, s->reinforced_bytes,
                s->st.train.samples ? (double)s->reinforced_bytes / s->st.train.samples : 0.0,
                s->st.train.samples ? (double)s->st.train.bytes / s->st.train.samples : 0.0, s->reinforce_seconds,
                s->reinforce_reused ? " (reused with the captions: `--reuse`)" : "");
    else fprintf(f, "Not run: %s.\n", s->reinforce_why);
    fprintf(f, "\n## Students\n\nConfiguration `configs/%s.json` (image %d px, embedding %d, context %d), seed %llu for "
               "every run (same initialisation and data order), %lld steps of batch %d (%lld samples), AdamW lr %s, "
               "wd 0.2, %s warmup steps, cosine schedule. Evaluations at log-spaced points of the one schedule "
               "(`--stop-after`, then `--resume`). Zero-shot: CLIP's protocol with the 80 ImageNet templates and the "
               "class names; %d test images, preprocessed as the reference does; R@1 on %d test image-caption pairs "
               "(noisy captions). Chance is 0.10.\n\n",
            o->student, s->cfg.image_size, s->cfg.embed_dim, s->cfg.text.context_length, (unsigned long long)o->seed,
            s->runs[0].steps, s->student_batch, s->student_samples, s->student_lr, s->warmup, s->n_eval,
            s->untrained.n_retrieval);
    fprintf(f, "| run | lambda | seen samples | zero-shot top-1 (test) | top-5 | top-1 (held-out) | I->T R@1 | T->I R@1 |\n"
               "|---|---|---|---|---|---|---|---|\n");
    md_eval_row(f, "untrained", "-", &s->untrained);
    for (int k = 0; k < MC_XP_RUNS; k++) {
        const mc_xp_model *m = &s->runs[k];
        char lam[16];
        snprintf(lam, sizeof lam, "%.1f", m->lambda);
        if (!m->ran) fprintf(f, "| %s | %s | - | not run: %s | | | | |\n", m->label, lam, m->why_not);
        for (int i = 0; i < m->n_evals; i++) md_eval_row(f, m->label, lam, &m->ev[i]);
    }
    fprintf(f, "\n![zero-shot top-1 against seen samples](accuracy.png)\n\n## Learning efficiency\n\n");
    for (int k = 2; k < MC_XP_RUNS; k++) {
        long long at;
        double ratio, gain;
        mc_xp_efficiency(s, k, &at, &ratio, &gain);
        if (!s->runs[k].ran || !s->runs[0].ran) continue;
        if (at > 0)
            fprintf(f, "- %s reaches plain CLIP's final zero-shot top-1 after %lld seen samples: **%.1fx fewer** "
                       "(evaluation points are a factor 1.41 apart, so this is a lower bound); ",
                    s->runs[k].label, at, ratio);
        else fprintf(f, "- %s does not reach plain CLIP's final zero-shot top-1 within the budget; ", s->runs[k].label);
        fprintf(f, "at the same budget it is **%+.1f points**.\n", 100.0 * gain);
    }
    fprintf(f, "\nTarget (issue 8): >= 5x fewer seen samples and >= 5 points at the same budget.\n\n"
               "## Per-step time\n\n| run | steps | ms per step |\n|---|---|---|\n");
    for (int k = 0; k < MC_XP_RUNS; k++)
        if (s->runs[k].ran) fprintf(f, "| %s | %lld | %.1f |\n", s->runs[k].label, s->runs[k].steps, ms_per_step(&s->runs[k]));
    fprintf(f, "\n## Timings (this machine)\n\nWall: shards %.1f s, untrained student %.1f s, teachers %.1f s, captioner %.1f s "
               "+ captions %.1f s, reinforcement %.1f s, students %.1f s (evaluations included), total %.1f s.\n\n"
               "CPU (user + system, all threads; on a shared machine the better measure of cost): teachers %.1f s, "
               "captioner %.1f s + captions %.1f s, reinforcement %.1f s, students %.1f s, total %.1f s.\n",
            s->sec_shards, s->sec_init + s->sec_untrained_eval, s->sec_teachers, s->captioner_seconds, s->caption_seconds,
            s->reinforce_seconds, s->sec_students, s->sec_total, s->cpu_teachers, s->captioner_cpu, s->caption_cpu,
            s->cpu_reinforce, s->cpu_students, s->cpu_total);
    return mc_atomic_commit(&af, e);
}

/* ---- plot and table ---- */

int mc_xp_plot(const mc_xp_state *s, const char *path, mc_err *e) {
    double x[MC_XP_RUNS][MC_XP_MAX_EVALS], y[MC_XP_RUNS][MC_XP_MAX_EVALS];
    mc_plot_series ser[MC_XP_RUNS];
    int n = 0;
    for (int k = 0; k < MC_XP_RUNS; k++) {
        const mc_xp_model *m = &s->runs[k];
        if (!m->n_evals) continue;
        for (int i = 0; i < m->n_evals; i++) x[n][i] = (double)m->ev[i].seen, y[n][i] = m->ev[i].test_top1;
        ser[n] = (mc_plot_series){m->label, x[n], y[n], m->n_evals};
        n++;
    }
    if (!n) return 0;
    char title[128];
    snprintf(title, sizeof title, "Fashion-MNIST zero-shot top-1 (test), %s run, seed %llu", s->o->quick ? "quick" : "full",
             (unsigned long long)s->o->seed);
    int r = mc_plot_lines_png(path, ser, n, title, "seen samples", "top-1", 1, e);
    mc_plot_release(); /* fontconfig's caches (a leak report otherwise) */
    return r;
}

void mc_xp_print_table(const mc_xp_state *s, FILE *f) {
    const mc_fmnist_run_opts *o = s->o;
    fprintf(f, "Fashion-MNIST experiment (%s, seed %llu) -> %s\n", o->quick ? "quick" : "full", (unsigned long long)o->seed, o->out);
    const mc_caption_quality *q = &s->st.train.quality;
    fprintf(f, "real captions (train, %lld): right %.4f  wrong %.4f  none %.4f  mixed %.4f\n", q->n, frac(q, 0), frac(q, 1),
            frac(q, 2), frac(q, 3));
    if (s->captioner_ran)
        fprintf(f, "synthetic captions (%lld): right %.4f  wrong %.4f  none %.4f  mixed %.4f\n", s->syn_quality.n,
                frac(&s->syn_quality, 0), frac(&s->syn_quality, 1), frac(&s->syn_quality, 2), frac(&s->syn_quality, 3));
    else fprintf(f, "synthetic captions: not run (%s)\n", s->captioner_why);
    if (s->reinforce_ran)
        fprintf(f, "reinforced shards: %.0f bytes per sample (%d augmentations)\n",
                s->st.train.samples ? (double)s->reinforced_bytes / s->st.train.samples : 0.0, s->num_aug);
    fprintf(f, "%-28s %6s %8s %10s %8s %10s %8s %8s\n", "model", "lambda", "seen", "zs top-1", "top-5", "held-out",
            "I->T R1", "T->I R1");
    const mc_xp_eval *v = &s->untrained;
    fprintf(f, "%-28s %6s %8lld %10.4f %8.4f %10.4f %8.4f %8.4f\n", "untrained student", "-", 0LL, v->test_top1, v->test_top5,
            v->heldout_top1, v->i2t_r1, v->t2i_r1);
    for (int k = 0; k < MC_XP_TEACHERS; k++) {
        const mc_xp_model *t = &s->teachers[k];
        if (!t->ran) fprintf(f, "%-28s not run: %s\n", t->label, t->why_not);
        for (int i = 0; i < t->n_evals; i++)
            fprintf(f, "%-28s %6s %8lld %10.4f %8.4f %10.4f %8.4f %8.4f\n", t->label, "-", t->ev[i].seen, t->ev[i].test_top1,
                    t->ev[i].test_top5, t->ev[i].heldout_top1, t->ev[i].i2t_r1, t->ev[i].t2i_r1);
    }
    for (int k = 0; k < MC_XP_RUNS; k++) {
        const mc_xp_model *m = &s->runs[k];
        if (!m->ran && !m->n_evals) fprintf(f, "%-28s not run: %s\n", m->label, m->why_not);
        for (int i = 0; i < m->n_evals; i++)
            fprintf(f, "%-28s %6.1f %8lld %10.4f %8.4f %10.4f %8.4f %8.4f\n", m->label, m->lambda, m->ev[i].seen,
                    m->ev[i].test_top1, m->ev[i].test_top5, m->ev[i].heldout_top1, m->ev[i].i2t_r1, m->ev[i].t2i_r1);
    }
    for (int k = 2; k < MC_XP_RUNS; k++) {
        long long at;
        double ratio, gain;
        if (!s->runs[k].ran || !s->runs[0].ran) continue;
        mc_xp_efficiency(s, k, &at, &ratio, &gain);
        fprintf(f, "efficiency %-17s reaches plain's final top-1 at %lld seen (%.1fx fewer); %+.1f points at plain's budget; "
                   "%.1f vs %.1f ms per step\n",
                s->runs[k].name, at, ratio, 100.0 * gain, ms_per_step(&s->runs[k]), ms_per_step(&s->runs[0]));
    }
}
