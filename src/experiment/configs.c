/* configs.c - lookup, parsing and saving of the built-in configurations. */
#include "experiment/configs.h"

#include <string.h>

#include "io/atomic_file.h"

const mc_builtin_config *mc_builtin_config_find(const char *name) {
    for (int i = 0; i < mc_builtin_configs_count; i++)
        if (!strcmp(mc_builtin_configs[i].name, name)) return &mc_builtin_configs[i];
    return NULL;
}

int mc_builtin_config_is_captioner(const mc_builtin_config *b) {
    size_t n = strlen(b->name), k = strlen("_captioner");
    return n >= k && !strcmp(b->name + n - k, "_captioner");
}

int mc_builtin_config_parse(const mc_builtin_config *b, mc_clip_config *out, mc_err *e) {
    char source[96];
    snprintf(source, sizeof source, "%s.json", b->name);
    return mc_clip_config_parse((const char *)b->json, *b->size, source, out, e);
}

int mc_builtin_config_save(const mc_builtin_config *b, const char *path, mc_err *e) {
    mc_atomic_file af;
    int r = mc_atomic_open(&af, path, e);
    if (r) return r;
    if (fwrite(b->json, 1, *b->size, af.f) != *b->size) {
        mc_atomic_abort(&af);
        return mc_fail(e, MC_E_IO, "%s: write failed", path);
    }
    return mc_atomic_commit(&af, e);
}
