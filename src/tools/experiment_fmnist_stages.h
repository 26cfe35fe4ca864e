/* experiment_fmnist_stages.h - the stages of `experiment fmnist` that drive the project's own
 * commands (train, caption, reinforce) in-process through their argv interface, and the
 * evaluation of a checkpoint through the public API. Shared by experiment_fmnist*.c only.
 *
 * Output folder layout (paths relative to DIR):
 *   teachers/<config>/          `train --data-kind plain --lambda 0` of each teacher (stamp.txt:
 *                               the argv it was trained with, for --reuse)
 *   captioner/                  `train --config configs/fmnist_captioner.json` (stamp.txt as the
 *                               teachers')
 *   syn.jsonl                   synthetic captions, {"key": K, "syn_text": [...]} per sample
 *   reinforced/train-NNNNN.tar  `reinforce` of the train shards (images kept: the loader reapplies
 *                               the stored augmentations to them)
 *   students/<run>/             `train` of each student run, stopped at every evaluation point
 *                               (--stop-after, then --resume: bit-exact continuation)
 */
#ifndef MC_TOOLS_EXPERIMENT_FMNIST_STAGES_H
#define MC_TOOLS_EXPERIMENT_FMNIST_STAGES_H

#include <stdint.h>

#include "core/error.h"
#include "experiment/fmnist.h"
#include "models/config.h"
#include "tools/experiment_fmnist.h"

#define MC_XP_MAX_EVALS 12

/* The evaluations of one checkpoint. */
typedef struct mc_xp_eval {
    long long seen;      /* training samples seen when the checkpoint was taken */
    int n_test, n_heldout, n_retrieval;
    double test_top1, test_top5, heldout_top1, heldout_top5, i2t_r1, t2i_r1, i2t_r5, t2i_r5;
    double logit_scale;  /* the checkpoint's min(exp(logit_scale), 100) */
    double seconds_test, seconds_heldout, seconds_retrieval, seconds_classifier;
} mc_xp_eval;

/* Zero-shot top-1/top-5 of the checkpoint on n_eval test images (IDX files in `data`, the
 * reference preprocessing) and on the first n_eval held-out shard samples (held_spec may be
 * NULL), and image<->text R@1/R@5 on the first n_eval test shard samples' captions. */
int mc_xp_evaluate(const char *ckpt, const char *config, const char *held_spec, const char *test_spec, const char *data,
                   int n_eval, mc_xp_eval *f, mc_err *e);

/* Runs `mobileclip <args[0]> args[1] ...` (NULL-terminated) in-process; returns its exit status.
 * The command line is echoed to stderr (so a user can re-run any stage by hand). */
int mc_xp_command(const char *const *args);

/* CPU time of the process so far (user + system, all threads), seconds: the stages' cost on a
 * shared machine, where wall time says little. */
double mc_xp_cpu_seconds(void);

/* The stamp of a cached stage: DIR/stamp.txt holds the text that produced DIR's contents.
 * 1 when it holds exactly `stamp`, else 0. */
int mc_xp_stamp_matches(const char *dir, const char *stamp);
int mc_xp_stamp_write(const char *dir, const char *stamp, mc_err *e);
/* Removes the plain files of dir (not recursive) and creates it again if missing. */
int mc_xp_dir_reset(const char *dir, mc_err *e);
int mc_xp_make_dir(const char *path, mc_err *e);
/* Sum of the sizes of the files matching DIR/<prefix>*.tar; *count receives their number. */
long long mc_xp_tar_bytes(const char *dir, const char *prefix, int *count);

/* The real caption of every sample of the shards, written as synthetic-caption lines
 * {"key": K, "syn_text": [caption]} (the stand-in when no captioner ran: the DR runs then see
 * the real caption in the synthetic slot, and that is reported). */
int mc_xp_write_real_as_syn(const char *spec, const char *path, mc_err *e);

/* One trained model of the experiment: a teacher or a student run. Paths relative to DIR. */
typedef struct mc_xp_model {
    char name[64];            /* teachers: the configuration name; students: plain, syn_lambda0, ... */
    char label[64];           /* for people: "plain CLIP", "DR lambda 0.7", ... */
    double lambda;
    const char *data_kind;    /* "plain" or "dr" */
    char config[256], checkpoint[256], dir[256];
    uint64_t seed;
    int ran, reused;
    char why_not[1024];       /* when !ran */
    long long steps, batch, seen;
    double train_seconds;     /* in `train` only (evaluations excluded) */
    int n_evals;
    mc_xp_eval ev[MC_XP_MAX_EVALS];
} mc_xp_model;

#define MC_XP_TEACHERS 2
#define MC_XP_RUNS 4

/* Everything a run measured (written by experiment_fmnist_report.c). */
typedef struct mc_xp_state {
    const mc_fmnist_run_opts *o;
    /* the plan */
    int limit, n_eval, teacher_batch, student_batch, num_aug, num_syn, n_points;
    long long teacher_samples, student_samples, captioner_steps;
    int captioner_batch, captioner_seq_len;
    const char *student_lr, *teacher_lr, *captioner_lr, *warmup; /* as passed to train */
    /* data */
    mc_fmnist_shards_stats st;
    char specs[3][128];
    mc_clip_config cfg;
    mc_xp_eval untrained;
    mc_xp_model teachers[MC_XP_TEACHERS];
    /* synthetic captions */
    int captioner_ran, captioner_reused;
    char captioner_why[512];
    mc_caption_quality syn_quality;
    double captioner_seconds, caption_seconds, captioner_cpu, caption_cpu; /* wall and CPU (all threads) */
    /* reinforcement */
    int reinforce_ran, reinforce_reused; /* reused: the captions and the reinforced shards (--reuse) */
    char reinforce_why[512];
    long long reinforced_bytes;
    int reinforced_files;
    double reinforce_seconds;
    mc_xp_model runs[MC_XP_RUNS];
    double sec_shards, sec_init, sec_untrained_eval, sec_teachers, sec_students, sec_total;
    double cpu_teachers, cpu_reinforce, cpu_students, cpu_total; /* CPU seconds of the process, all threads */
} mc_xp_state;

/* DR run k against plain (runs[0]): the first evaluation at which run k's zero-shot top-1 reaches
 * plain's final one (*seen_at; -1 when none), *ratio = plain's final seen samples / *seen_at
 * (0 when not reached), *gain = run k's final top-1 - plain's final top-1 (same budget). */
void mc_xp_efficiency(const mc_xp_state *s, int k, long long *seen_at, double *ratio, double *gain);
int mc_xp_write_results(const mc_xp_state *s, const char *path, mc_err *e);
int mc_xp_write_report(const mc_xp_state *s, const char *path, mc_err *e);
int mc_xp_plot(const mc_xp_state *s, const char *path, mc_err *e);
void mc_xp_print_table(const mc_xp_state *s, FILE *f);

#endif
