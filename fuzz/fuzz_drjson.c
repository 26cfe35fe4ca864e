/* fuzz_drjson.c - libFuzzer target: DataCompDR's JSON and text members (syn.json,
 * paug.json in list and JSON-string form, json, txt) through their parsers.
 * Seeds (fuzz/seeds/drjson): one of each member kind.
 * Run: build-fuzz/fuzz_drjson -max_total_time=60 corpus fuzz/seeds/drjson
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/dr_sample.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mc_err e = {0};
    mc_strlist l;
    mc_strlist_init(&l);
    if (mc_dr_parse_syn(data, size, "syn.json", NULL, &l, &e) == 0) {
        if (l.count < 1) abort();
        for (int i = 0; i < l.count; i++)
            if (!mc_utf8_valid(l.items[i], strlen(l.items[i])) && !strstr((const char *)data, "\\u")) abort();
    } else if (!e.msg[0] || l.count) abort();
    mc_strlist_free(&l);
    mc_dr_paug p;
    if (mc_dr_parse_paug(data, size, "paug.json", &p, &e) == 0) {
        if (p.count < 1 || !mc_dr_paug_at(&p, p.count - 1)) abort();
        mc_dr_paug_free(&p);
    } else if (!e.msg[0] || p.root) abort();
    mc_json *j;
    if (mc_dr_parse_json(data, size, "x.json", &j, &e) == 0) mc_json_free(j);
    char *t;
    if (mc_dr_parse_text(data, size, "x.txt", &t, &e) == 0) {
        if (strlen(t) != size) abort();
        free(t);
    }
    return 0;
}
