/* Caption post-processing of DataCompDR's gen.py; see caption_text.h. */
#include "caption/caption_text.h"

#include <string.h>

#include "text/unicode.h"

char *mc_caption_text_cut(char *text) {
    char *p = strstr(text, "<end_of_text>");
    if (p) *p = 0;
    /* split(SOT)[-1]: what follows the last start token */
    const char *sot = "<start_of_text>";
    char *start = text;
    for (char *q = strstr(start, sot); q; q = strstr(start, sot)) start = q + strlen(sot);
    memmove(text, start, strlen(start) + 1);
    if ((p = strchr(text, '.'))) *p = 0;
    /* rstrip(): the text is valid UTF-8 (decode replaced ill-formed bytes) */
    size_t end = 0, i = 0, n = strlen(text);
    while (i < n) {
        unsigned char c = (unsigned char)text[i];
        int w = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        uint32_t cp = w == 1 ? c : (uint32_t)(c & (0x7F >> w));
        for (int k = 1; k < w && i + k < n; k++) cp = (cp << 6) | ((unsigned char)text[i + k] & 0x3Fu);
        i += (size_t)w;
        if (!mc_uc_py_isspace(cp)) end = i;
    }
    text[end < n ? end : n] = 0;
    return text;
}

int mc_caption_text(const mc_tokenizer *t, const int32_t *ids, int n, char **out, mc_err *e) {
    int r = mc_tokenizer_decode(t, ids, n, out, e);
    if (!r) mc_caption_text_cut(*out);
    return r;
}
