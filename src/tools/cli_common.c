#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/mapped_file.h"
#include "tools/cli.h"

const char *mc_cli_value(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "mobileclip %s: option %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int mc_cli_model_opt(const char *cmd, int argc, char **argv, int *i, mc_model_opts *o) {
    const char *a = argv[*i], *v;
    if (strcmp(a, "--training-form") == 0) {
        o->training_form = 1;
        return 1;
    }
    if (strcmp(a, "--checkpoint") && strcmp(a, "--arch") && strcmp(a, "--config") && strcmp(a, "--threads") &&
        strcmp(a, "--vocab") && strcmp(a, "--precision"))
        return 0;
    if (!(v = mc_cli_value(cmd, argc, argv, i))) return -1;
    if (strcmp(a, "--checkpoint") == 0) o->checkpoint = v;
    else if (strcmp(a, "--config") == 0) o->config = v;
    else if (strcmp(a, "--vocab") == 0) o->vocab = v;
    else if (strcmp(a, "--precision") == 0) {
        static const char *const names[] = {"f32", "bf16", "int8"};
        int k = 0;
        while (k < 3 && strcmp(v, names[k])) k++;
        if (k == 3) {
            fprintf(stderr, "mobileclip %s: unknown --precision '%s' (expected f32, bf16 or int8)\n", cmd, v);
            return -1;
        }
        o->precision = k;
        o->precision_given = 1;
    }
    else if (strcmp(a, "--arch") == 0) {
        o->arch = mobileclip_arch_from_name(v);
        if (o->arch == -2) {
            fprintf(stderr, "mobileclip %s: unknown --arch '%s' (expected s0, s1, s2, b or auto)\n", cmd, v);
            return -1;
        }
    } else {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (*end || errno || n < 1 || n > 1024) {
            fprintf(stderr, "mobileclip %s: --threads expects a number from 1 to 1024, got '%s'\n", cmd, v);
            return -1;
        }
        o->threads = (int)n;
    }
    return 1;
}

int mc_cli_check_model_opts(const char *cmd, const mc_model_opts *o, int need_text) {
    if (!o->checkpoint) {
        fprintf(stderr, "mobileclip %s: --checkpoint FILE is required\n", cmd);
        return 2;
    }
    if (o->config && o->arch != MOBILECLIP_ARCH_AUTO) {
        fprintf(stderr, "mobileclip %s: give either --arch or --config, not both\n", cmd);
        return 2;
    }
    (void)need_text; /* the vocabulary is built in; --vocab only overrides it */
    return 0;
}

int mc_cli_finish_output(const char *cmd) {
    if (fflush(stdout) == 0 && !ferror(stdout)) return 0;
    fprintf(stderr, "mobileclip %s: cannot write the output\n", cmd);
    return 1;
}

mobileclip_ctx *mc_cli_load(const char *cmd, const mc_model_opts *o, int need_image, int need_text) {
    if (mc_cli_check_model_opts(cmd, o, need_text)) return NULL;
    mobileclip_params p = mobileclip_default_params();
    p.arch = (mobileclip_arch)o->arch;
    p.config_path = o->config;
    p.n_threads = o->threads;
    p.reparameterize = !o->training_form;
    p.precision = o->precision_given ? (mobileclip_precision)o->precision : MOBILECLIP_PRECISION_AUTO;
    p.load_image = need_image;
    p.load_text = need_text;
    p.vocab_path = need_text ? o->vocab : NULL;
    char err[600];
    mobileclip_ctx *ctx = mobileclip_init_from_file(o->checkpoint, &p, err, sizeof err);
    if (!ctx) fprintf(stderr, "mobileclip %s: %s\n", cmd, err);
    return ctx;
}

/* Length of the valid UTF-8 sequence at s, or 0 if invalid. */
static int utf8_len(const unsigned char *s) {
    if (s[0] < 0x80) return 1;
    int n = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!n || (n == 2 && s[0] < 0xc2)) return 0;
    for (int k = 1; k < n; k++)
        if ((s[k] & 0xc0) != 0x80) return 0;
    unsigned cp = n == 3 ? ((s[0] & 0x0fu) << 12 | (s[1] & 0x3fu) << 6 | (s[2] & 0x3fu))
                         : n == 4 ? ((s[0] & 0x07u) << 18 | (s[1] & 0x3fu) << 12 | (s[2] & 0x3fu) << 6 | (s[3] & 0x3fu)) : 0x80;
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
    return n;
}

void mc_json_print_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') { fputc('\\', f); fputc(c, f); p++; continue; }
        if (c < 0x20) {
            if (c == '\n') fputs("\\n", f);
            else if (c == '\t') fputs("\\t", f);
            else if (c == '\r') fputs("\\r", f);
            else fprintf(f, "\\u%04x", c);
            p++;
            continue;
        }
        int n = utf8_len(p);
        if (!n) { fprintf(f, "\\udc%02x", c); p++; continue; } /* surrogateescape: reversible */
        fwrite(p, 1, (size_t)n, f);
        p += n;
    }
    fputc('"', f);
}

void mc_json_print_number(FILE *f, float v, int digits) {
    if (isfinite(v)) fprintf(f, "%.*g", digits, v);
    else fputs("null", f);
}

void mc_json_print_floats(FILE *f, const float *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i) fputc(',', f);
        mc_json_print_number(f, v[i], 9);
    }
    fputc(']', f);
}

char **mc_cli_read_lines(const char *cmd, const char *path, int *count) {
    char *data;
    size_t len;
    mc_err e = {0};
    if (mc_read_file(path, (size_t)64 << 20, &data, &len, &e)) {
        fprintf(stderr, "mobileclip %s: %s\n", cmd, e.msg);
        return NULL;
    }
    if (memchr(data, 0, len)) {
        fprintf(stderr, "mobileclip %s: %s: contains NUL bytes (not a text file)\n", cmd, path);
        free(data);
        return NULL;
    }
    int cap = 16, n = 0, oom = 0;
    char **lines = malloc(sizeof(char *) * (size_t)cap);
    char *text = data;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) text += 3; /* UTF-8 byte-order mark */
    for (char *save = NULL, *tok = strtok_r(text, "\n", &save); tok && lines && !oom; tok = strtok_r(NULL, "\n", &save)) {
        while (*tok == ' ' || *tok == '\t' || *tok == '\r') tok++;
        size_t l = strlen(tok);
        while (l && (tok[l - 1] == ' ' || tok[l - 1] == '\t' || tok[l - 1] == '\r')) tok[--l] = 0;
        if (!l) continue;
        if (n + 1 >= cap) {
            char **nl = realloc(lines, sizeof(char *) * (size_t)(cap *= 2));
            if (!nl) { oom = 1; break; }
            lines = nl;
        }
        if (!(lines[n] = strdup(tok))) oom = 1;
        else lines[++n] = NULL;
    }
    if (lines) lines[n] = NULL;
    if (oom) { mc_cli_free_lines(lines); lines = NULL; }
    free(data);
    if (!lines) {
        fprintf(stderr, "mobileclip %s: out of memory reading %s\n", cmd, path);
        return NULL;
    }
    lines[n] = NULL;
    *count = n;
    return lines;
}

void mc_cli_free_lines(char **lines) {
    if (!lines) return;
    for (char **p = lines; *p; p++) free(*p);
    free(lines);
}

const char *const *mc_cli_templates(const char *cmd, const char *arg, int *count, char ***owned) {
    *owned = NULL;
    if (strcmp(arg, "imagenet") == 0) return mobileclip_imagenet_templates(count);
    if (strcmp(arg, "simple") == 0) return mobileclip_simple_templates(count);
    *owned = mc_cli_read_lines(cmd, arg, count);
    return (const char *const *)*owned;
}

/* Options of any command that take a value: after one of them the next argument is its value
 * even when it looks like --x=y. Others may be added; a missing one only matters for a value
 * that itself starts with "--" and contains '='. */
static const char *const value_opts[] = {"--checkpoint", "--arch", "--threads", "--vocab", "--image", "--text",
                                         "--image-list", "--text-list", "--image-dir", "--batch", "--format",
                                         "--out", "--labels", "--labels-file", "--templates", "--top", "--context",
                                         "-o", "--output", "--dtype", "--dataset", "--fashion-mnist", "--split",
                                         "--idx-images", "--idx-labels", "--classes", "--confusion", "--captions",
                                         "--shards", "--limit", "--config", "--precision", NULL};

static int takes_value(const char *a) {
    for (const char *const *o = value_opts; *o; o++)
        if (!strcmp(a, *o)) return 1;
    return 0;
}

char **mc_cli_split_equals(int argc, char **argv, int *out_argc) {
    char **out = malloc(sizeof *out * (size_t)(2 * argc + 1));
    if (!out) return NULL;
    int n = 0, value_next = 0, rest = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i], *eq;
        if (i == 0 || rest || value_next) { /* the program, a value, or after "--" */
            value_next = 0;
            out[n++] = a;
            continue;
        }
        if (strncmp(a, "--", 2) || !(eq = strchr(a, '=')) || eq == a + 2) {
            value_next = takes_value(a);
            rest = !strcmp(a, "--");
            out[n++] = a;
            continue;
        }
        *eq = 0; /* argv strings are ours to modify */
        out[n++] = a;
        out[n++] = eq + 1;
    }
    out[n] = NULL;
    *out_argc = n;
    return out;
}
