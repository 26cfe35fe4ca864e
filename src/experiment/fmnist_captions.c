/* fmnist_captions.c - the seeded noisy-caption process and class-synonym matching. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/rng.h"
#include "experiment/fmnist.h"

const char *const mc_fmnist_class_names[MC_FMNIST_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

const char *const mc_caption_kind_names[4] = {"right", "wrong", "none", "mixed"};

/* Per-class synonyms, in matching form (lower case, words separated by one space); the
 * generator writes them with hyphens sometimes ("t shirt" -> "t-shirt"). A plural s/es is
 * accepted after any of them. */
#define MAX_SYN 9
static const char *const synonyms[MC_FMNIST_CLASSES][MAX_SYN] = {
    {"t shirt", "tshirt", "tee shirt", "tee", "top", "tank top", "crop top", "crew neck tee", NULL},
    {"trouser", "pants", "slacks", "jeans", "chinos", "leggings", "joggers", NULL},
    {"pullover", "sweater", "jumper", "sweatshirt", "hoodie", "cardigan", NULL},
    {"dress", "gown", "frock", "sundress", "maxi dress", "midi dress", NULL},
    {"coat", "jacket", "overcoat", "parka", "trench coat", "blazer", "raincoat", NULL},
    {"sandal", "flip flop", "slider", "strappy sandal", NULL},
    {"shirt", "blouse", "button down", "button up", "flannel", "oxford shirt", NULL},
    {"sneaker", "trainer", "running shoe", "tennis shoe", "kicks", NULL},
    {"bag", "handbag", "purse", "tote", "backpack", "clutch", "satchel", "shoulder bag", NULL},
    {"ankle boot", "boot", "bootie", "chelsea boot", NULL},
};

const char *mc_fmnist_synonym(int c, int k) {
    return c < 0 || c >= MC_FMNIST_CLASSES || k < 0 || k >= MAX_SYN ? NULL : synonyms[c][k];
}

/* ---- matching ---- */

/* text -> lower-case alphanumeric words separated by single spaces, with a leading and a
 * trailing space (" t shirt for men "). Blanks, '-' and '_' separate words; any other
 * punctuation becomes a "|" word of its own, so "tee, shirt" is two items, not a "tee shirt".
 * Returns the length. */
static size_t normalise(const char *text, size_t len, char *out, size_t cap) {
    size_t n = 0;
    out[n++] = ' ';
    for (size_t i = 0; i < len && n + 4 < cap; i++) {
        unsigned char c = (unsigned char)text[i];
        if (isalnum(c) && c < 128) out[n++] = (char)tolower(c);
        else if (c == ' ' || c == '-' || c == '_' || c == '\t' || c == '\n' || c == '\r' || c == '\'' || c >= 128) {
            if (out[n - 1] != ' ') out[n++] = ' ';
        } else {
            if (out[n - 1] != ' ') out[n++] = ' ';
            out[n++] = '|', out[n++] = ' ';
        }
    }
    if (out[n - 1] != ' ') out[n++] = ' ';
    out[n] = 0;
    return n;
}

/* Length of synonym s matched at p (p at a word start) including a plural ending, when it
 * ends on a word boundary; 0 otherwise. */
static size_t match_at(const char *p, const char *s) {
    size_t k = strlen(s);
    if (strncmp(p, s, k)) return 0;
    if (p[k] == ' ') return k;
    if (p[k] == 's' && p[k + 1] == ' ') return k + 1;
    if (p[k] == 'e' && p[k + 1] == 's' && p[k + 2] == ' ') return k + 2;
    return 0;
}

uint32_t mc_fmnist_caption_classes(const char *text, size_t len) {
    char buf[4096];
    if (len > sizeof buf - 4) len = sizeof buf - 4;
    size_t n = normalise(text, len, buf, sizeof buf);
    uint32_t mask = 0;
    size_t i = 1; /* buf[i] starts a word (buf[i-1] == ' ') */
    while (i < n) {
        size_t best = 0;
        int best_c = -1;
        for (int c = 0; c < MC_FMNIST_CLASSES; c++)
            for (int k = 0; k < MAX_SYN && synonyms[c][k]; k++) {
                size_t m = match_at(buf + i, synonyms[c][k]);
                if (m > best) best = m, best_c = c;
            }
        if (best_c >= 0) {
            mask |= 1u << best_c;
            i += best + 1;
        } else {
            const char *sp = strchr(buf + i, ' ');
            i = (size_t)(sp - buf) + 1;
        }
    }
    return mask;
}

mc_caption_kind mc_caption_kind_of(uint32_t named, int label) {
    uint32_t own = 1u << label;
    if (!named) return MC_CAPTION_NONE;
    if (named == own) return MC_CAPTION_RIGHT;
    return named & own ? MC_CAPTION_MIXED : MC_CAPTION_WRONG;
}

void mc_caption_quality_add(mc_caption_quality *q, const char *text, size_t len, int label) {
    q->n++;
    q->kind[mc_caption_kind_of(mc_fmnist_caption_classes(text, len), label)]++;
}

double mc_caption_quality_right(const mc_caption_quality *q) {
    return q->n ? (double)q->kind[MC_CAPTION_RIGHT] / (double)q->n : 0.0;
}

/* ---- the random stream: splitmix64 over a per-sample counter ---- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next(rng *r) { return mc_mix64(r->s += 0x9e3779b97f4a7c15ULL); }
static double unif(rng *r) { return (double)(next(r) >> 11) * 0x1.0p-53; }
static int pick(rng *r, int n) { return (int)(((next(r) >> 32) * (uint64_t)n) >> 32); }
static int coin(rng *r, double p) { return unif(r) < p; }
static const char *pick_str(rng *r, const char *const *list) {
    int n = 0;
    while (list[n]) n++;
    return list[pick(r, n)];
}

/* ---- the vocabulary of the process (none of these words may match a synonym) ---- */

/* look-alike classes, for half of the wrong captions */
static const int confusable[MC_FMNIST_CLASSES][3] = {
    {6, 2, -1}, {3, -1, -1}, {4, 6, 0}, {4, 1, -1}, {2, 6, -1}, {7, 9, -1}, {0, 2, 4}, {5, 9, -1}, {-1, -1, -1}, {7, 5, -1},
};
static const char *const dark_colours[] = {"black", "dark", "charcoal", "dark grey", "navy", NULL};
static const char *const mid_colours[] = {"grey", "gray", "heather grey", "beige", "taupe", NULL};
static const char *const light_colours[] = {"white", "light grey", "cream", "ivory", "off-white", NULL};
static const char *const any_colours[] = {"red", "blue", "green", "pink", "yellow", "olive", "burgundy",
                                          "orange", "purple", "teal", "khaki", "brown", NULL};
static const char *const materials[] = {"cotton", "denim", "leather", "wool", "suede", "linen", "silk", "canvas",
                                        "knit", "nylon", "faux fur", "mesh", NULL};
static const char *const styles[] = {"casual", "vintage", "classic", "oversized", "slim fit", "summer", "winter",
                                     "striped", "plain", "printed", "retro", "basic", "designer", NULL};
static const char *const tails[] = {"free shipping", "sale", "new arrival", "best price", "#ootd", "in stock",
                                    "limited edition", "2019 collection", "on white background", "product photo",
                                    "size m", "size xl", "one size", "great gift", "fast delivery", "hot deal", NULL};
static const char *const no_item[] = {"product image", "click to zoom", "new in", "untitled", "view larger",
                                      "front view", "our latest collection", "sale! up to 50% off", "image",
                                      "thumbnail", "fashion", "outfit of the day", "style inspiration", "shop now",
                                      "back in stock", "item details", "see more colours", "detail shot", NULL};
/* "%s" is the attributed item; the ones with two take (item, other item) in the mixed case */
static const char *const templates[] = {"%s", "a photo of a %s", "%s for women", "%s for men", "men's %s",
                                        "women's %s", "buy %s online", "close-up of a %s", "new %s", "%s, front view",
                                        "cheap %s", "%s on sale", "my favourite %s", "%s | shop", "the %s i bought",
                                        "%s product shot", "stylish %s", "an image of %s", "kids %s", "%s - sale",
                                        "flat lay of a %s", "%s in stock now", NULL};
static const char *const pair_templates[] = {"%s and %s", "%s with matching %s", "%s, %s and more", "outfit: %s + %s",
                                             NULL};

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) {
    if (b->n + 1 >= b->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k > 0) b->n = b->n + (size_t)k < b->cap ? b->n + (size_t)k : b->cap - 1;
}

/* A synonym of class c as it is written: hyphenated sometimes, plural sometimes. */
static void put_item(sbuf *b, rng *r, int c) {
    const char *s = pick_str(r, synonyms[c]);
    int hyphen = coin(r, 0.5), plural = coin(r, 0.2);
    for (const char *q = s; *q; q++) put(b, "%c", *q == ' ' && hyphen ? '-' : *q);
    size_t k = strlen(s);
    if (plural && s[k - 1] != 's') put(b, s[k - 1] == 'h' ? "es" : "s");
}

/* Mean brightness of the garment's pixels (the non-zero ones) picks the "true" colour words. */
static const char *const *colour_list(const uint8_t *px) {
    long sum = 0, n = 0;
    for (int i = 0; i < MC_FMNIST_SIDE * MC_FMNIST_SIDE; i++)
        if (px[i] > 16) sum += px[i], n++;
    double m = n ? (double)sum / (double)n : 0;
    /* Fashion-MNIST is stored inverted: bright pixels are dark cloth in the original photo */
    return m > 170 ? dark_colours : m > 90 ? mid_colours : light_colours;
}

/* "[colour ][material ][style ]item" */
static void put_attributed(sbuf *b, rng *r, int c, const uint8_t *px) {
    if (coin(r, 0.5)) put(b, "%s ", coin(r, MC_FMNIST_P_WRONG_COLOUR) ? pick_str(r, any_colours) : pick_str(r, colour_list(px)));
    if (coin(r, 0.3)) put(b, "%s ", pick_str(r, materials));
    if (coin(r, 0.3)) put(b, "%s ", pick_str(r, styles));
    put_item(b, r, c);
}

static int other_class(rng *r, int label) {
    int k = 0;
    while (k < 3 && confusable[label][k] >= 0) k++;
    if (k && coin(r, 0.5)) return confusable[label][pick(r, k)];
    int c = pick(r, MC_FMNIST_CLASSES - 1);
    return c >= label ? c + 1 : c;
}

void mc_fmnist_caption(uint64_t seed, mc_fmnist_split split, uint64_t index, int label, const uint8_t *px, char *out,
                       uint32_t *named) {
    rng r = {mc_mix64(seed ^ mc_mix64(((uint64_t)split << 40) ^ index ^ 0x6d6f62696c65ULL))};
    char body[MC_FMNIST_CAPTION_MAX];
    sbuf b = {body, 0, sizeof body};
    body[0] = 0;
    uint32_t mask = 0;
    double u = unif(&r);
    if (u < MC_FMNIST_P_WRONG + MC_FMNIST_P_NONE && u >= MC_FMNIST_P_WRONG) { /* no item */
        put(&b, "%s", pick_str(&r, no_item));
        if (coin(&r, 0.3)) put(&b, " %s", pick_str(&r, tails));
        else if (coin(&r, 0.3)) put(&b, " img_%04d", pick(&r, 10000));
    } else {
        int c = u < MC_FMNIST_P_WRONG ? other_class(&r, label) : label;
        char item[MC_FMNIST_CAPTION_MAX];
        sbuf ib = {item, 0, sizeof item};
        item[0] = 0;
        put_attributed(&ib, &r, c, px);
        mask |= 1u << c;
        if (u >= MC_FMNIST_P_WRONG + MC_FMNIST_P_NONE && u < MC_FMNIST_P_WRONG + MC_FMNIST_P_NONE + MC_FMNIST_P_MIXED) {
            char second[MC_FMNIST_CAPTION_MAX];
            sbuf sb = {second, 0, sizeof second};
            second[0] = 0;
            int o = other_class(&r, label);
            put_item(&sb, &r, o);
            mask |= 1u << o;
            if (coin(&r, 0.5)) put(&b, pick_str(&r, pair_templates), item, second);
            else put(&b, pick_str(&r, pair_templates), second, item);
        } else put(&b, pick_str(&r, templates), item);
        if (coin(&r, 0.35)) put(&b, coin(&r, 0.5) ? " %s" : " - %s", pick_str(&r, tails));
        if (coin(&r, 0.1)) put(&b, " sku %d", 1000 + pick(&r, 9000));
    }
    /* case: 60% as written, 30% Title Case, 10% UPPER */
    double cu = unif(&r);
    for (size_t i = 0, start = 1; body[i]; i++) {
        unsigned char ch = (unsigned char)body[i];
        if (cu >= 0.9 || (cu >= 0.6 && start)) body[i] = (char)toupper(ch);
        start = !isalnum(ch) && ch != '\'';
    }
    memcpy(out, body, b.n + 1);
    if (named) *named = mask;
}
