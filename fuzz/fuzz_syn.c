/* fuzz_syn.c - libFuzzer target: the synthetic-caption JSON lines (src/reinforce/syn.h), one
 * line per input line, then for every stored key the syn.json writer, whose output must read
 * back (mc_dr_parse_syn) as the same captions.
 * Seeds (fuzz/seeds/syn). Run: build-fuzz/fuzz_syn -max_total_time=60 corpus fuzz/seeds/syn
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/dr_sample.h"
#include "reinforce/syn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mc_syn_store s;
    mc_syn_init(&s);
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        mc_err e = {0};
        int r = mc_syn_add_line(&s, p, n, "fuzz", &e);
        if (r < 0) abort();
        if (r == 1 && !e.msg[0]) abort();
        p += n + 1;
    }
    for (size_t i = 0; i < s.cap; i++) {
        if (!s.slots[i].key) continue;
        char *const *caps;
        int n = mc_syn_find(&s, s.slots[i].key, &caps);
        if (n < 1) abort();
        char *out;
        size_t len;
        mc_err e = {0};
        if (mc_syn_json_write(caps, n, &out, &len, &e)) abort();
        mc_strlist back;
        mc_strlist_init(&back);
        if (mc_dr_parse_syn(out, len, "syn.json", NULL, &back, &e) || back.count != n) abort();
        for (int k = 0; k < n; k++)
            if (strcmp(back.items[k], caps[k])) abort();
        mc_strlist_free(&back);
        free(out);
    }
    mc_syn_free(&s);
    return 0;
}
