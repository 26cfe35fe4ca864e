/* `mobileclip embed` as a batch tool, through the command line with the s0 test model:
 *  - inputs from the command line, list files and stdin come out in input order, whatever the
 *    batch size, with the reference embeddings (golden data);
 *  - output is streamed: with --batch 1 the first row arrives while stdin is still open;
 *  - npy (header read back here) and f32 rows are bit-identical to the jsonl numbers, and the
 *    names sidecar lists the rows in order;
 *  - --skip-errors: every bad input reported on stderr, every good one written, exit status 3;
 *    without it: exit 1, the rows of earlier batches on stdout, and with --out no file at all;
 *  - --image-dir: recursive, by content (JPEG/PNG/WebP; wrong or missing extensions and dot
 *    files included, non-images with image names excluded), byte order; a non-UTF-8 file name round-trips through \udcXX;
 *  - --opt=value gives byte-identical output; --version; warnings for a zero embedding (a
 *    checkpoint with a zero text projection) and for a text cut at 77 tokens. */
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/test_util.h"
#include "io/mapped_file.h"

#define DIM 512

static char T[64], CKPT[128], CLI[1024];

/* Runs `sh -c cmd` with stdout/stderr into T/out, T/err; returns the exit status. */
static int run(const char *cmd) {
    char full[16384];
    snprintf(full, sizeof full, "%s >'%s/out' 2>'%s/err'", cmd, T, T);
    int st = system(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static char *slurp(const char *name, size_t *len) {
    char path[256], *data = NULL;
    size_t l = 0;
    mc_err e = {0};
    snprintf(path, sizeof path, "%s/%s", T, name);
    if (mc_read_file(path, (size_t)1 << 30, &data, &l, &e)) {
        data = calloc(1, 1);
        l = 0;
    }
    if (len) *len = l;
    return data;
}

static int file_exists(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", T, name);
    return access(path, F_OK) == 0;
}

/* Parsed jsonl output: kinds, inputs (surrogateescape decoded to bytes), rows. */
typedef struct rows {
    int n;
    char kind[64][8];
    char input[64][512];
    float emb[64][DIM];
} rows;

/* U+DC80..U+DCFF (UTF-8 ED B2 80 .. ED B3 BF, as the JSON parser keeps lone surrogates) -> byte. */
static void unescape_bytes(const char *s, size_t len, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < cap; i++) {
        const unsigned char *u = (const unsigned char *)s + i;
        if (i + 2 < len && u[0] == 0xed && (u[1] == 0xb2 || u[1] == 0xb3) && (u[2] & 0xc0) == 0x80) {
            unsigned cp = 0xd000u | ((u[1] & 0x3fu) << 6) | (u[2] & 0x3fu);
            out[o++] = (char)(cp - 0xdc00);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = 0;
}

static void parse_lines(char *text, rows *r, int with_emb) {
    r->n = 0;
    char *save = NULL;
    mc_err e = {0};
    for (char *line = strtok_r(text, "\n", &save); line && r->n < 64; line = strtok_r(NULL, "\n", &save)) {
        mc_json *j = mc_json_parse(line, strlen(line), &e);
        const mc_json *kind = mc_json_get(j, "kind"), *in = mc_json_get(j, "input"), *emb = mc_json_get(j, "embedding");
        CHECK(kind && in && (!with_emb || (emb && emb->count == DIM)), "bad output line: %.200s", line);
        if (kind && in) {
            snprintf(r->kind[r->n], sizeof r->kind[0], "%s", kind->str);
            unescape_bytes(in->str, in->len, r->input[r->n], sizeof r->input[0]);
            for (int d = 0; with_emb && emb && d < DIM && d < emb->count; d++)
                r->emb[r->n][d] = emb->items[d].type == MC_JSON_NUMBER ? (float)emb->items[d].number : NAN;
            r->n++;
        }
        mc_json_free(j);
    }
}

static rows *out_rows(void) {
    rows *r = calloc(1, sizeof *r);
    char *o = slurp("out", NULL);
    parse_lines(o, r, 1);
    free(o);
    return r;
}

static double max_diff(const float *a, const float *b) {
    double m = 0;
    for (int d = 0; d < DIM; d++) m = fmax(m, fabs((double)a[d] - b[d]));
    return m;
}

static void write_file(const char *name, const char *data, size_t len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", T, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f)) mc_test_fatal("cannot write %s", path);
}

static void copy_file(const char *src, const char *name) {
    size_t len;
    char *d;
    mc_err e = {0};
    if (mc_read_file(src, 1 << 26, &d, &len, &e)) mc_test_fatal("%s", e.msg);
    write_file(name, d, len);
    free(d);
}

/* ---- cases ---- */

static const char *IMG0, *IMG1;
static float ref_img[2][DIM], ref_txt[4][DIM];
static char texts[4][512];

static void check_order_and_values(void) {
    /* image0, texts 0 and 1 from a list file, image1, text 2, text 3 from stdin */
    char list[1100];
    snprintf(list, sizeof list, "%s\n\n%s\r\n", texts[0], texts[1]);
    write_file("texts.txt", list, strlen(list));
    write_file("stdin.txt", texts[3], strlen(texts[3]));
    const char *kinds[6] = {"image", "text", "text", "image", "text", "text"};
    const float *refs[6] = {ref_img[0], ref_txt[0], ref_txt[1], ref_img[1], ref_txt[2], ref_txt[3]};
    char *first = NULL;
    for (int batch = 1; batch <= 4; batch += 3) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd,
                 "'%s' embed --raw --batch %d --checkpoint '%s' --image '%s' --text-list '%s/texts.txt' --image '%s' "
                 "--text '%s' --text-list - <'%s/stdin.txt'",
                 CLI, batch, CKPT, IMG0, T, IMG1, texts[2], T);
        int st = run(cmd);
        CHECK(st == 0, "order run (batch %d) exit %d", batch, st);
        rows *r = out_rows();
        CHECK(r->n == 6, "batch %d: %d rows, want 6", batch, r->n);
        double worst = 0;
        for (int k = 0; k < r->n && k < 6; k++) {
            CHECK(!strcmp(r->kind[k], kinds[k]), "batch %d row %d: kind %s, want %s", batch, k, r->kind[k], kinds[k]);
            double m = 0;
            for (int d = 0; d < DIM; d++) m = fmax(m, fabs(refs[k][d]));
            worst = fmax(worst, max_diff(r->emb[k], refs[k]) / m);
        }
        CHECK(!strcmp(r->input[1], texts[0]) && !strcmp(r->input[4], texts[2]) && !strcmp(r->input[5], texts[3]),
              "batch %d: inputs out of order", batch);
        CHECK(worst < 1e-4, "batch %d: rows differ from the reference by %g (relative)", batch, worst);
        printf("%-4s order: 6 inputs from argv, a list and stdin, batch %d: in order, max rel. diff to reference %.2e\n",
               worst < 1e-4 && r->n == 6 ? "ok" : "FAIL", batch, worst);
        free(r);
        /* the same with --opt=value: byte-identical output */
        if (batch == 1) {
            first = slurp("out", NULL);
            snprintf(cmd, sizeof cmd,
                     "'%s' embed --raw --batch=1 --checkpoint='%s' --image='%s' --text-list='%s/texts.txt' "
                     "--image='%s' --text='%s' --text-list=- <'%s/stdin.txt'",
                     CLI, CKPT, IMG0, T, IMG1, texts[2], T);
            st = run(cmd);
            char *second = slurp("out", NULL);
            CHECK(st == 0 && !strcmp(first, second), "--opt=value output differs (exit %d)", st);
            printf("%-4s --opt=value: same bytes as --opt value\n", st == 0 && !strcmp(first, second) ? "ok" : "FAIL");
            free(second);
        }
    }
    free(first);
}

/* With --batch 1 the first row must arrive while stdin is still open. */
static void check_streaming(void) {
    int in[2], out[2];
    if (pipe(in) || pipe(out)) mc_test_fatal("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        execl(CLI, CLI, "embed", "--batch", "1", "--checkpoint", CKPT, "--text-list", "-", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (write(in[1], "a cat\n", 6) != 6) mc_test_fatal("write");
    struct pollfd p = {out[0], POLLIN, 0};
    int ready = poll(&p, 1, 120000); /* generous: a sanitizer build loads slowly */
    char buf[256];
    ssize_t got = ready > 0 ? read(out[0], buf, sizeof buf - 1) : 0;
    buf[got > 0 ? got : 0] = 0;
    CHECK(got > 0 && strstr(buf, "{\"kind\":\"text\",\"input\":\"a cat\""), "no row before stdin was closed");
    printf("%-4s streaming: first row written while stdin is still open\n", got > 0 ? "ok" : "FAIL");
    close(in[1]);
    while (read(out[0], buf, sizeof buf) > 0) {}
    close(out[0]);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "streaming run exit status %d", st);
}

static void check_binary_outputs(void) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' embed --batch 2 --checkpoint '%s' --image '%s' --text 'a cat' --image '%s'", CLI, CKPT,
             IMG0, IMG1);
    CHECK(run(cmd) == 0, "jsonl run");
    rows *ref = out_rows();
    snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " --out '%s/e.npy'", T);
    CHECK(run(cmd) == 0, "npy run");
    size_t len, olen;
    char *out = slurp("out", &olen);
    CHECK(olen == 0, "npy run printed %zu bytes on stdout", olen);
    free(out);
    unsigned char *npy = (unsigned char *)slurp("e.npy", &len);
    CHECK(len == 128 + 3 * DIM * 4, "e.npy is %zu bytes, want %d", len, 128 + 3 * DIM * 4);
    int ok = len >= 128 && !memcmp(npy, "\x93NUMPY\x01\x00", 8) && npy[8] + 256 * npy[9] == 118 && npy[127] == '\n';
    CHECK(ok, "e.npy: bad magic, version or header length");
    char dict[200] = "";
    if (len >= 128) memcpy(dict, npy + 10, 117);
    for (int i = (int)strlen(dict) - 1; i >= 0 && dict[i] == ' '; i--) dict[i] = 0;
    CHECK(!strcmp(dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 512), }"), "e.npy header: %s", dict);
    int same = len == 128 + 3 * DIM * 4 && ref->n == 3;
    for (int k = 0; same && k < 3; k++) same = !memcmp(npy + 128 + (size_t)k * DIM * 4, ref->emb[k], DIM * 4);
    CHECK(same, "npy rows differ from the jsonl rows");
    free(npy);
    char *names = slurp("e.names.jsonl", &len);
    rows *nr = calloc(1, sizeof *nr);
    parse_lines(names, nr, 0);
    CHECK(nr->n == 3 && !strcmp(nr->input[0], IMG0) && !strcmp(nr->kind[1], "text") && !strcmp(nr->input[1], "a cat") &&
              !strcmp(nr->input[2], IMG1),
          "e.names.jsonl does not list the rows in order");
    printf("%-4s npy: header %s, rows bit-identical to jsonl, sidecar of %d names in order\n",
           ok && same && nr->n == 3 ? "ok" : "FAIL", dict, nr->n);
    free(names);
    /* f32: raw rows, same sidecar */
    snprintf(cmd, sizeof cmd, "'%s' embed --batch 2 --checkpoint '%s' --image '%s' --text 'a cat' --image '%s' --out '%s/e.f32'",
             CLI, CKPT, IMG0, IMG1, T);
    CHECK(run(cmd) == 0, "f32 run");
    unsigned char *raw = (unsigned char *)slurp("e.f32", &len);
    same = len == 3 * DIM * 4 && ref->n == 3;
    for (int k = 0; same && k < 3; k++) same = !memcmp(raw + (size_t)k * DIM * 4, ref->emb[k], DIM * 4);
    names = slurp("e.names.jsonl", &len);
    parse_lines(names, nr, 0);
    CHECK(same && nr->n == 3, "f32 output: %zu bytes or rows differ, %d names", len, nr->n);
    printf("%-4s f32: rows bit-identical to jsonl, sidecar of %d names\n", same && nr->n == 3 ? "ok" : "FAIL", nr->n);
    free(raw);
    free(names);
    free(nr);
    free(ref);
}

static void check_errors(void) {
    char bad_png[512], missing[512], lst[2048], cmd[4096];
    size_t len;
    char *d;
    mc_err e = {0};
    if (mc_read_file(IMG1, 1 << 26, &d, &len, &e)) mc_test_fatal("%s", e.msg);
    write_file("bad.png", d, 3000); /* truncated */
    free(d);
    snprintf(bad_png, sizeof bad_png, "%s/bad.png", T);
    snprintf(missing, sizeof missing, "%s/missing.jpg", T);
    snprintf(lst, sizeof lst, "%s\n%s\n%s\n%s\n", IMG0, bad_png, missing, IMG1);
    write_file("images.txt", lst, strlen(lst));
    write_file("badtext.txt", "a dog\n\xff\xfe\n", 9);
    snprintf(cmd, sizeof cmd, "'%s' embed --skip-errors --batch 4 --checkpoint '%s' --image-list '%s/images.txt' "
             "--text-list '%s/badtext.txt'", CLI, CKPT, T, T);
    int st = run(cmd);
    rows *r = out_rows();
    char *err = slurp("err", NULL);
    int reported = strstr(err, bad_png) && strstr(err, missing) && strstr(err, "badtext.txt:2");
    CHECK(st == 3, "--skip-errors with bad inputs: exit %d, want 3", st);
    CHECK(reported, "--skip-errors: not every bad input reported:\n%s", err);
    CHECK(r->n == 3 && !strcmp(r->input[0], IMG0) && !strcmp(r->input[1], IMG1) && !strcmp(r->input[2], "a dog"),
          "--skip-errors: good rows missing or out of order (%d rows)", r->n);
    /* the good rows are the rows a clean run gives (IMG1 came after two failures in its batch) */
    snprintf(cmd, sizeof cmd, "'%s' embed --checkpoint '%s' --image '%s' --image '%s' --text 'a dog'", CLI, CKPT, IMG0, IMG1);
    CHECK(run(cmd) == 0, "clean run");
    rows *c = out_rows();
    double worst = 0;
    for (int k = 0; k < 3 && k < r->n && k < c->n; k++) worst = fmax(worst, max_diff(r->emb[k], c->emb[k]));
    CHECK(worst < 1e-6, "--skip-errors rows differ from a clean run by %g", worst);
    printf("%-4s --skip-errors: exit 3, 3 bad inputs reported, 3 good rows in order (max diff to clean run %.1e)\n",
           st == 3 && reported && r->n == 3 && worst < 1e-6 ? "ok" : "FAIL", worst);
    free(err);
    free(c);
    free(r);

    /* no --skip-errors: stops at the bad input; earlier batches are already out */
    snprintf(cmd, sizeof cmd, "'%s' embed --batch 1 --checkpoint '%s' --image-list '%s/images.txt'", CLI, CKPT, T);
    st = run(cmd);
    r = out_rows();
    err = slurp("err", NULL);
    CHECK(st == 1 && r->n == 1 && strstr(err, bad_png), "stop at bad input: exit %d, %d rows", st, r->n);
    printf("%-4s bad input without --skip-errors: exit %d, %d row streamed before it\n", st == 1 && r->n == 1 ? "ok" : "FAIL",
           st, r->n);
    free(err);
    free(r);
    /* ... and with --out, nothing that looks like a result is left */
    snprintf(cmd, sizeof cmd, "'%s' embed --batch 1 --checkpoint '%s' --image-list '%s/images.txt' --out '%s/fail.npy'", CLI,
             CKPT, T, T);
    st = run(cmd);
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c '^fail' > '%s/count'", T, T);
    system(cmd);
    char *count = slurp("count", NULL);
    CHECK(st == 1 && !file_exists("fail.npy") && !file_exists("fail.names.jsonl") && atoi(count) == 0,
          "failed --out run left files (exit %d, %d fail* entries)", st, atoi(count));
    printf("%-4s failed run with --out: exit %d, no output file, no sidecar, no temporary file\n",
           st == 1 && atoi(count) == 0 ? "ok" : "FAIL", st);
    free(count);
}

static void check_dir(void) {
    char cmd[4096], dir[256];
    snprintf(dir, sizeof dir, "%s/photos", T);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/sub/deeper' '%s/empty'", dir, dir);
    system(cmd);
    copy_file(IMG0, "photos/sub/a.txt");                       /* PNG with a wrong extension */
    copy_file(mc_test_path("images/rocket.jpg"), "photos/sub/deeper/noext"); /* JPEG without one */
    copy_file(IMG1, "photos/\xff\xfe name.png");               /* a name that is not UTF-8 */
    copy_file(IMG1, "photos/b.png");
    write_file("photos/fake.jpg", "not an image\n", 13);        /* an image name, not an image */
    copy_file(IMG1, "photos/.hidden.png");                     /* dot files are inputs too */
    copy_file(MC_TEST_DATA_DIR "/shards/lossy.webp", "photos/c.webp");
    snprintf(cmd, sizeof cmd, "'%s' embed --checkpoint '%s' --image-dir '%s'", CLI, CKPT, dir);
    int st = run(cmd);
    rows *r = out_rows();
    const char *want[6] = {".hidden.png", "b.png", "c.webp", "sub/a.txt", "sub/deeper/noext", "\xff\xfe name.png"};
    int ok = st == 0 && r->n == 6;
    for (int k = 0; ok && k < 6; k++) {
        char full[600];
        snprintf(full, sizeof full, "%s/%s", dir, want[k]);
        ok = !strcmp(r->input[k], full) && access(r->input[k], R_OK) == 0;
    }
    CHECK(ok, "--image-dir: exit %d, %d rows, names or order wrong", st, r->n);
    /* the non-UTF-8 file's and the dot file's rows are the same image as b.png */
    CHECK(r->n == 6 && max_diff(r->emb[1], r->emb[5]) == 0 && max_diff(r->emb[1], r->emb[0]) == 0,
          "copies of b.png embed differently");
    char *out = slurp("out", NULL);
    CHECK(strstr(out, "\\udcff\\udcfe name.png") != NULL, "non-UTF-8 bytes not written as \\udcXX");
    printf("%-4s --image-dir: 6 images by content (WebP and dot file included) in byte order, non-image .jpg skipped, non-UTF-8 name round-trips\n",
           ok ? "ok" : "FAIL");
    free(out);
    free(r);
}

static void check_messages(void) {
    char cmd[4096], zero[256];
    int st = run("\"$MC_CLI\" --version");
    char *out = slurp("out", NULL);
    int ok = st == 0 && !strncmp(out, "mobileclip ", 11) && strstr(out, "built for:")
#if defined(__x86_64__)
             && strstr(out, "this cpu:") && strstr(out, "sse2")
#endif
        ;
    CHECK(ok, "--version (exit %d):\n%s", st, out);
    printf("%-4s --version: %.*s\n", ok ? "ok" : "FAIL", (int)strcspn(out, "\n"), out);
    free(out);

    /* progress: on request only (stderr is not a terminal here), with count, rate and the total */
    snprintf(cmd, sizeof cmd, "'%s' embed --batch 1 --progress --checkpoint '%s' --image '%s' --text 'a cat'", CLI, CKPT, IMG0);
    st = run(cmd);
    char *err = slurp("err", NULL);
    ok = st == 0 && strstr(err, "1/2") && strstr(err, "2/2") && strstr(err, "100%") && strstr(err, "items/s");
    CHECK(ok, "--progress: exit %d, stderr '%s'", st, err);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' embed --checkpoint '%s' --image '%s' --text 'a cat'", CLI, CKPT, IMG0);
    st = run(cmd);
    err = slurp("err", NULL);
    CHECK(st == 0 && err[0] == 0, "no progress when stderr is not a terminal: '%s'", err);
    printf("%-4s --progress draws done/total, %%, items/s; nothing without it on a non-terminal\n", ok && !err[0] ? "ok" : "FAIL");
    free(err);

    /* a text of 76 one-token words is cut; 75 fit */
    char text[400] = "";
    for (int k = 0; k < 75; k++) strcat(text, "a ");
    snprintf(cmd, sizeof cmd, "'%s' embed --checkpoint '%s' --text '%s'", CLI, CKPT, text);
    st = run(cmd);
    err = slurp("err", NULL);
    CHECK(st == 0 && err[0] == 0, "75-token text: exit %d, stderr '%s'", st, err);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' embed --checkpoint '%s' --text '%sa'", CLI, CKPT, text);
    st = run(cmd);
    err = slurp("err", NULL);
    ok = st == 0 && strstr(err, "warning: text 1: longer than 77 tokens");
    CHECK(ok, "76-token text: exit %d, stderr '%s'", st, err);
    printf("%-4s truncation warning for 76 tokens, none for 75\n", ok ? "ok" : "FAIL");
    free(err);

    /* zero text projection: zero embedding, a warning, no NaN/null in the output */
    snprintf(zero, sizeof zero, "%s/zero.safetensors", T);
    snprintf(cmd, sizeof cmd, "'%s/make_test_checkpoint' s0 '%s' --zero text_encoder.projection_layer", getenv("MC_BUILD_DIR"),
             zero);
    if (system(cmd)) mc_test_fatal("cannot write %s", zero);
    snprintf(cmd, sizeof cmd, "'%s' embed --checkpoint '%s' --text 'a cat' --image '%s'", CLI, zero, IMG0);
    st = run(cmd);
    err = slurp("err", NULL);
    rows *r = out_rows();
    int zeros = r->n == 2, finite = r->n == 2;
    for (int d = 0; d < DIM && r->n == 2; d++) {
        zeros &= r->emb[0][d] == 0;
        finite &= isfinite(r->emb[1][d]);
    }
    ok = st == 0 && zeros && finite && strstr(err, "text 1: the embedding is zero") && !strstr(err, IMG0);
    CHECK(ok, "zero projection: exit %d, zeros %d, stderr '%s'", st, zeros, err);
    printf("%-4s zero-norm text embedding: written as zeros with a warning (image row unaffected)\n", ok ? "ok" : "FAIL");
    free(err);
    free(r);
    remove(zero);
}

int main(void) {
    if (!getenv("MC_CLI") || !getenv("MC_BUILD_DIR")) mc_test_fatal("MC_CLI and MC_BUILD_DIR must be set (run via ctest)");
    snprintf(CLI, sizeof CLI, "%s", getenv("MC_CLI"));
    snprintf(T, sizeof T, "/tmp/mc_stream_XXXXXX");
    if (!mkdtemp(T)) mc_test_fatal("mkdtemp failed");
    snprintf(CKPT, sizeof CKPT, "%s/s0.safetensors", T);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/make_test_checkpoint' s0 '%s'", getenv("MC_BUILD_DIR"), CKPT);
    if (system(cmd)) mc_test_fatal("cannot write the test checkpoint");
    static char img0[512], img1[512];
    snprintf(img0, sizeof img0, "%s", mc_test_path("images/chelsea.png"));
    snprintf(img1, sizeof img1, "%s", mc_test_path("images/astronaut.png"));
    IMG0 = img0;
    IMG1 = img1;

    mc_tensor_map g;
    mc_json *hdr;
    mc_test_load_golden("golden/s0.golden.safetensors", &g, &hdr);
    mc_tensor_to_f32(mc_test_tensor(&g, "output.image_embed_reparam"), &ref_img[0][0]);
    mc_tensor_to_f32(mc_test_tensor(&g, "output.text_embed_reparam"), &ref_txt[0][0]);
    mc_err e = {0};
    const mc_json *ts = mc_json_get(mc_json_get(hdr, "__metadata__"), "texts");
    mc_json *tj = ts ? mc_json_parse(ts->str, ts->len, &e) : NULL;
    if (!tj || tj->count != 4) mc_test_fatal("golden texts metadata");
    for (int i = 0; i < 4; i++) {
        /* texts 0, 1, 3 go through list files (non-empty lines), text 2 ("") through --text '' */
        if ((i != 2 && !tj->items[i].str[0]) || strchr(tj->items[i].str, '\'') || strchr(tj->items[i].str, '\n'))
            mc_test_fatal("golden text %d cannot be passed through the shell/list as is", i);
        snprintf(texts[i], sizeof texts[i], "%s", tj->items[i].str);
    }
    mc_json_free(tj);
    mc_json_free(hdr);
    mc_tensor_map_free(&g);

    check_order_and_values();
    check_streaming();
    check_binary_outputs();
    check_errors();
    check_dir();
    check_messages();

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", T);
    system(cmd);
    return mc_test_finish("cli_stream");
}
