/* Differential test of core/http/http_parse.c against an independent parser:
 * nodejs http_parser (Debian's libhttp-parser 2.9, which Debian builds
 * without HTTP_PARSER_STRICT). A test-only dependency: CMake builds this
 * test only when it finds the library.
 *
 * The inputs: the seed corpus of the fuzz driver
 * (tests/fuzz/corpus/fuzz_http_parse/), the table of heads of
 * test_http_parse.c (included below), and deterministic variants of each:
 * every byte replaced by each byte of an interesting set, every byte
 * deleted, each interesting byte inserted at every offset, and every line
 * doubled (about 850,000 inputs). Each input is parsed whole by both:
 * http_parser once paused at on_headers_complete, to read its head, then
 * again on exactly the head's bytes, since it refuses a Transfer-Encoding
 * without a final chunked only after on_headers_complete. The outcomes:
 *   - both accept: they must agree on the head's length, the method, the
 *     target, the version, the fields (names, and values without the OWS
 *     around them: http_parser keeps trailing whitespace), Content-Length
 *     and chunked. keep-alive is compared too: where we close and
 *     http_parser keeps the connection, we are the safer, and it is counted
 *     ("Connection: keep-alive, close" in HTTP/1.0: we honour close,
 *     http_parser its keep-alive flag; ",close": http_parser misses close
 *     after an empty list element); the other way round is a failure unless
 *     it is one of the Connection categories below;
 *   - we refuse, http_parser accepts: allowed (we are stricter), counted by
 *     our reason;
 *   - both refuse, or the head is still incomplete for us: counted (a head
 *     complete for http_parser but not for us is a failure);
 *   - we accept, http_parser refuses or waits: a failure, except in these
 *     documented categories, each a reading of the RFC where http_parser is
 *     stricter or wrong, none changing the framing:
 *       method: a method token http_parser does not know (it has a fixed,
 *         case-sensitive list of 34). RFC 9110 9.1: a method is a token;
 *         which ones are implemented is the server's business (501);
 *       target: a request target that http_parser's URL parser refuses (not
 *         starting with '/', '*' or a scheme, e.g. "\"index" or "1", or a
 *         CONNECT target that is not host:port). We check the target's bytes
 *         (VCHAR and obs-text, no '#'), not its form: that is routing, for
 *         the server;
 *       duplicate_content_length: several identical Content-Length fields.
 *         RFC 9110 8.6 lets a recipient take them as one; http_parser
 *         refuses any second Content-Length;
 *       htab_ows: an HTAB in the OWS of Content-Length, Transfer-Encoding or
 *         Connection ("Content-Length: 5<HTAB>"). OWS is SP or HTAB (RFC 9110
 *         5.6.3); http_parser's readers of those three values skip SP only;
 *       transfer_encoding_name_prefix: a field whose name starts with
 *         "Transfer-Encoding" but is longer ("Transfer-Encoding#"): another
 *         field, which we ignore; http_parser takes it for a
 *         Transfer-Encoding (it flags the name once its prefix matched) and
 *         refuses it with a Content-Length or without chunked;
 *       connection_empty_element (keep-alive only): "Connection: ,keep-alive"
 *         in HTTP/1.0. Recipients must accept empty list elements (RFC 9110
 *         5.6.1.2); http_parser then misses keep-alive.
 *     An input is put in a category only if, once those features are
 *     neutralised in its bytes (the method replaced by GET, the target by
 *     "/" or "a:1", the extra Content-Length lines removed, HTABs in those
 *     fields by SP, the long name's first letter by X, the Connection list
 *     rewritten without empty elements), we still accept it, http_parser
 *     accepts it too, and both agree as above.
 * The counts of every category are printed, with an example each. The run
 * takes well under a second (under two with AddressSanitizer). */
#define HTTP_PARSE_CASES_ONLY
#include "test_http_parse.c"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <strings.h>

#include <cmocka.h>
#include <http_parser.h>

#ifndef WX_SOURCE_DIR
#define WX_SOURCE_DIR "."
#endif
#define CORPUS_DIR WX_SOURCE_DIR "/tests/fuzz/corpus/fuzz_http_parse"

#define MAX_FIELDS 128
static const struct http_parse_limits diff_limits = {8192, 8192, MAX_FIELDS};

/* ---- inputs ---- */

struct input {
    char *bytes;
    size_t len;
    char name[96];
};

static struct input *inputs;
static size_t n_inputs, cap_inputs;

static void add_input(const char *name, const char *a, size_t alen, const char *b, size_t blen)
{
    if (n_inputs == cap_inputs) {
        cap_inputs = cap_inputs ? cap_inputs * 2 : 256;
        inputs = realloc(inputs, cap_inputs * sizeof(*inputs));
        assert_non_null(inputs);
    }
    struct input *in = &inputs[n_inputs++];
    in->len = alen + blen;
    in->bytes = malloc(in->len ? in->len : 1);
    assert_non_null(in->bytes);
    memcpy(in->bytes, a, alen);
    memcpy(in->bytes + alen, b, blen);
    snprintf(in->name, sizeof(in->name), "%s", name);
}

static int load_inputs(void **state)
{
    for (size_t i = 0; i < N_HTTP_CASES; i++) {
        char name[96];
        snprintf(name, sizeof(name), "table:%s", http_cases[i].name);
        add_input(name, http_cases[i].head, http_cases[i].head_len, http_cases[i].rest,
                  http_cases[i].rest_len);
    }
    size_t from_table = n_inputs;
    DIR *d = opendir(CORPUS_DIR);
    if (!d) {
        print_error("cannot open %s\n", CORPUS_DIR);
        return -1;
    }
    struct dirent *e;
    char path[4096], buf[16384];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        char name[96];
        snprintf(name, sizeof(name), "corpus:%.80s", e->d_name);
        add_input(name, buf, n, "", 0);
    }
    closedir(d);
    if (n_inputs - from_table < 10) {
        print_error("only %zu seed files in %s\n", n_inputs - from_table, CORPUS_DIR);
        return -1;
    }
    print_message("%zu heads from the table, %zu seed files\n", from_table, n_inputs - from_table);
    return 0;
}

static int free_inputs(void **state)
{
    for (size_t i = 0; i < n_inputs; i++)
        free(inputs[i].bytes);
    free(inputs);
    return 0;
}

/* ---- http_parser ---- */

struct theirs {
    int complete; /* on_headers_complete reached */
    enum http_errno err;
    size_t consumed;
    int last; /* 1: a field name came last, 2: a value */
    size_t url, url_len;
    size_t n;
    struct {
        size_t name, name_len, value, value_len;
    } h[MAX_FIELDS + 1];
    int too_many;
    char store[32768];
    size_t store_len;
    int overflow;
    http_parser p;
};

static size_t append(struct theirs *t, const char *at, size_t len)
{
    if (t->store_len + len > sizeof(t->store)) {
        t->overflow = 1;
        return 0;
    }
    memcpy(t->store + t->store_len, at, len);
    t->store_len += len;
    return len;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct theirs *t = p->data;
    if (t->url_len == 0)
        t->url = t->store_len;
    t->url_len += append(t, at, len);
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    struct theirs *t = p->data;
    if (t->last != 1) {
        if (t->n == MAX_FIELDS + 1) {
            t->too_many = 1;
            return 0;
        }
        t->n++;
        t->h[t->n - 1].name = t->store_len;
        t->h[t->n - 1].name_len = 0;
        t->h[t->n - 1].value = t->store_len;
        t->h[t->n - 1].value_len = 0;
        t->last = 1;
    }
    t->h[t->n - 1].name_len += append(t, at, len);
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    struct theirs *t = p->data;
    if (t->n == 0)
        return 0;
    if (t->last != 2) {
        t->h[t->n - 1].value = t->store_len;
        t->h[t->n - 1].value_len = 0;
        t->last = 2;
    }
    t->h[t->n - 1].value_len += append(t, at, len);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct theirs *t = p->data;
    t->complete = 1;
    http_parser_pause(p, 1);
    return 0;
}

/* http_parser runs twice: once paused when its head is complete (to read
 * the head and its length), then on exactly those bytes without pausing:
 * some refusals (a Transfer-Encoding without a final chunked) come only
 * after on_headers_complete, and with no byte of body any error there is
 * the head's. */
static void their_parse(struct theirs *t, const char *buf, size_t len)
{
    static http_parser_settings settings, plain;
    if (!settings.on_headers_complete) {
        http_parser_settings_init(&settings);
        settings.on_url = on_url;
        settings.on_header_field = on_field;
        settings.on_header_value = on_value;
        settings.on_headers_complete = on_headers_complete;
        http_parser_settings_init(&plain);
    }
    memset(t, 0, offsetof(struct theirs, store));
    t->store_len = 0;
    t->overflow = 0;
    http_parser_init(&t->p, HTTP_REQUEST);
    t->p.data = t;
    t->consumed = http_parser_execute(&t->p, &settings, buf, len);
    t->err = HTTP_PARSER_ERRNO(&t->p);
    if (!t->complete)
        return;
    if (t->err != HPE_PAUSED) {
        t->complete = 0;
        return;
    }
    http_parser again;
    http_parser_init(&again, HTTP_REQUEST);
    http_parser_execute(&again, &plain, buf, t->consumed + 1);
    if (HTTP_PARSER_ERRNO(&again) != HPE_OK) {
        t->complete = 0;
        t->err = HTTP_PARSER_ERRNO(&again);
    }
}

/* ---- ours ---- */

struct ours {
    long rc;
    const char *why;
    struct http_head h;
    struct http_field f[MAX_FIELDS];
};

static void our_parse(struct ours *o, const char *buf, size_t len)
{
    o->rc = http_parse_head(buf, len, &diff_limits, &o->h, o->f, &o->why);
}

static void escape(char *out, size_t cap, const char *s, size_t len);

/* ---- comparison ---- */

static int span_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

static int method_known(const char *m, size_t len)
{
    for (int i = 0; i < 64; i++) {
        const char *s = http_method_str((enum http_method)i);
        if (!s || strcmp(s, "<unknown>") == 0)
            break;
        if (span_eq(m, len, s, strlen(s)))
            return 1;
    }
    return 0;
}

enum verdict { AGREE, KEEP_ALIVE_SAFER, KEEP_ALIVE_DIFFERS, DIFFER };

/* When both accept: do they read the head the same way? *what names the
 * first difference. */
static enum verdict compare_heads(const struct ours *o, const struct theirs *t, const char **what)
{
    const struct http_head *h = &o->h;
    *what = NULL;
    if (t->overflow || t->too_many)
        *what = "http_parser result too big to compare";
    else if ((size_t)o->rc != t->consumed + 1)
        *what = "head length";
    else if (!span_eq(h->method, h->method_len, http_method_str(t->p.method),
                      strlen(http_method_str(t->p.method))))
        *what = "method";
    else if (!span_eq(h->target, h->target_len, t->store + t->url, t->url_len))
        *what = "target";
    else if (t->p.http_major != 1 || t->p.http_minor != h->minor)
        *what = "version";
    else if (t->n != h->n_fields)
        *what = "field count";
    if (*what)
        return DIFFER;
    for (size_t i = 0; i < h->n_fields; i++) {
        const char *v = t->store + t->h[i].value;
        size_t vl = t->h[i].value_len;
        while (vl && (v[0] == ' ' || v[0] == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        if (!span_eq(h->fields[i].name, h->fields[i].name_len, t->store + t->h[i].name,
                     t->h[i].name_len)) {
            *what = "field name";
            return DIFFER;
        }
        if (!span_eq(h->fields[i].value, h->fields[i].value_len, v, vl)) {
            *what = "field value";
            return DIFFER;
        }
    }
    int their_cl = (t->p.flags & F_CONTENTLENGTH) != 0;
    if ((h->content_length >= 0) != their_cl ||
        (their_cl && (unsigned long long)h->content_length != t->p.content_length)) {
        *what = "Content-Length";
        return DIFFER;
    }
    if (h->chunked != ((t->p.flags & F_CHUNKED) != 0)) {
        *what = "chunked";
        return DIFFER;
    }
    int their_ka = http_should_keep_alive(&t->p);
    if (h->keep_alive != their_ka) {
        *what = "keep-alive";
        return h->keep_alive == 0 ? KEEP_ALIVE_SAFER : KEEP_ALIVE_DIFFERS;
    }
    return AGREE;
}

/* ---- counting ---- */

#define MAX_CATEGORIES 96

struct category {
    char name[200];
    size_t count;
    char example[160];
};

struct tally {
    struct category c[MAX_CATEGORIES];
    size_t n;
    size_t inputs, failures;
};

static void escape(char *out, size_t cap, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r')
            o += (size_t)snprintf(out + o, cap - o, "\\r");
        else if (c == '\n')
            o += (size_t)snprintf(out + o, cap - o, "\\n");
        else if (c == '\t')
            o += (size_t)snprintf(out + o, cap - o, "\\t");
        else if (c == '\\' || c == '"')
            o += (size_t)snprintf(out + o, cap - o, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    if (o + 5 >= cap && cap > 4)
        memcpy(out + cap - 4, "...", 4);
    else
        out[o] = '\0';
}

static void count(struct tally *t, const char *name, const char *input, size_t len)
{
    size_t i;
    for (i = 0; i < t->n; i++)
        if (strcmp(t->c[i].name, name) == 0)
            break;
    if (i == t->n) {
        assert_true(t->n < MAX_CATEGORIES);
        t->n++;
        snprintf(t->c[i].name, sizeof(t->c[i].name), "%s", name);
        escape(t->c[i].example, sizeof(t->c[i].example), input, len);
    }
    t->c[i].count++;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct category *)a)->name, ((const struct category *)b)->name);
}

static void print_tally(struct tally *t, const char *title)
{
    qsort(t->c, t->n, sizeof(t->c[0]), by_name);
    print_message("%s: %zu inputs\n", title, t->inputs);
    for (size_t i = 0; i < t->n; i++)
        print_message("  %7zu  %-60s e.g. \"%s\"\n", t->c[i].count, t->c[i].name, t->c[i].example);
}

static void failure(struct tally *t, const char *what, const char *input, size_t len)
{
    char esc[600], name[200];
    escape(esc, sizeof(esc), input, len);
    if (t->failures++ < 12)
        print_error("DISAGREEMENT (%s): \"%s\"\n", what, esc);
    snprintf(name, sizeof(name), "DISAGREEMENT: %.180s", what);
    count(t, name, input, len);
}

/* ---- neutralising the documented categories ---- */

/* Edits of a buffer, applied from the last to the first so that the
 * offsets (into the original bytes) hold. */
struct edit {
    size_t off, n;
    char rep[256];
};

struct edits {
    struct edit e[2 * MAX_FIELDS + 4];
    size_t n;
    char cat[160];
};

static void add_edit(struct edits *ed, size_t off, size_t n, const char *rep, size_t rep_len)
{
    assert_true(ed->n < sizeof(ed->e) / sizeof(ed->e[0]) && rep_len < sizeof(ed->e[0].rep));
    struct edit *e = &ed->e[ed->n++];
    e->off = off;
    e->n = n;
    memcpy(e->rep, rep, rep_len);
    e->rep[rep_len] = '\0';
}

static void add_cat(struct edits *ed, const char *cat)
{
    if (strstr(ed->cat, cat))
        return;
    size_t l = strlen(ed->cat);
    snprintf(ed->cat + l, sizeof(ed->cat) - l, "%s%s", l ? "+" : "", cat);
}

static int by_offset_desc(const void *a, const void *b)
{
    const struct edit *x = a, *y = b;
    return x->off < y->off ? 1 : x->off > y->off ? -1 : 0;
}

static char *apply_edits(const char *buf, size_t len, struct edits *ed, size_t *out_len)
{
    qsort(ed->e, ed->n, sizeof(ed->e[0]), by_offset_desc);
    size_t cap = len + 1;
    for (size_t i = 0; i < ed->n; i++)
        cap += strlen(ed->e[i].rep);
    char *b = malloc(cap);
    assert_non_null(b);
    memcpy(b, buf, len);
    size_t l = len;
    for (size_t i = 0; i < ed->n; i++) {
        const struct edit *e = &ed->e[i];
        size_t rl = strlen(e->rep);
        memmove(b + e->off + rl, b + e->off + e->n, l - e->off - e->n);
        memcpy(b + e->off, e->rep, rl);
        l = l - e->n + rl;
    }
    *out_len = l;
    return b;
}

static int name_is(const struct http_field *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

/* Do all Content-Length fields hold the number we read? */
static int same_lengths(const struct http_head *h)
{
    for (size_t i = 0; i < h->n_fields; i++) {
        const struct http_field *f = &h->fields[i];
        if (!name_is(f, "content-length"))
            continue;
        long long n = 0;
        for (size_t k = 0; k < f->value_len; k++) {
            if (f->value[k] < '0' || f->value[k] > '9' || n > 100000000000000000LL)
                return 0;
            n = n * 10 + (f->value[k] - '0');
        }
        if (f->value_len == 0 || n != h->content_length)
            return 0;
    }
    return 1;
}

/* The end of a field's line (past its LF). */
static const char *line_end(const struct http_field *f, const char *buf, size_t len)
{
    const char *after = f->value + f->value_len;
    return (const char *)memchr(after, '\n', (size_t)(buf + len - after)) + 1;
}

/* Finds the edits that neutralise the documented categories in our parse
 * of buf (all of them when `all`, else only those that may explain a
 * keep-alive difference); returns the neutralised bytes (malloc'd), or NULL
 * when no category applies. */
static char *neutralise(const char *buf, size_t len, const struct ours *o, int all, size_t *out_len,
                        char *cat, size_t cat_cap)
{
    static struct edits ed;
    ed.n = 0;
    ed.cat[0] = '\0';
    const struct http_head *h = &o->h;
    int cls = 0;
    for (size_t i = 0; i < h->n_fields; i++) {
        const struct http_field *f = &h->fields[i];
        const char *colon = f->name + f->name_len, *eol = line_end(f, buf, len);
        int special = name_is(f, "content-length") || name_is(f, "transfer-encoding");
        if (name_is(f, "connection")) {
            /* the list, without empty elements, SP-separated */
            char list[256];
            size_t l = 0;
            int rewrite = 0;
            for (size_t a = 0; a <= f->value_len;) {
                size_t e = a;
                while (e < f->value_len && f->value[e] != ',')
                    e++;
                size_t x = a, y = e;
                while (x < y && (f->value[x] == ' ' || f->value[x] == '\t'))
                    x++;
                while (y > x && (f->value[y - 1] == ' ' || f->value[y - 1] == '\t'))
                    y--;
                if (x == y)
                    rewrite |= 1;
                else if (l + (y - x) + 3 < sizeof(list)) {
                    l += (size_t)snprintf(list + l, sizeof(list) - l, "%s%.*s", l ? ", " : "",
                                          (int)(y - x), f->value + x);
                }
                a = e + 1;
            }
            if (memchr(colon, '\t', (size_t)(eol - colon)))
                rewrite |= 2;
            if (rewrite) {
                char line[300];
                int n =
                    snprintf(line, sizeof(line), "%.*s: %s\r\n", (int)f->name_len, f->name, list);
                if (n > 0 && (size_t)n < sizeof(line) && (size_t)n < sizeof(ed.e[0].rep)) {
                    add_edit(&ed, (size_t)(f->name - buf), (size_t)(eol - f->name), line,
                             (size_t)n);
                    if (rewrite & 1)
                        add_cat(&ed, "connection_empty_element");
                    if (rewrite & 2)
                        add_cat(&ed, "htab_ows");
                }
            }
            continue;
        }
        if (!all)
            continue;
        if (special && memchr(colon, '\t', (size_t)(eol - colon))) {
            for (const char *q = colon; q < eol; q++)
                if (*q == '\t')
                    add_edit(&ed, (size_t)(q - buf), 1, " ", 1);
            add_cat(&ed, "htab_ows");
        }
        if (f->name_len > 17 && strncasecmp(f->name, "transfer-encoding", 17) == 0) {
            add_edit(&ed, (size_t)(f->name - buf), 1, "X", 1);
            add_cat(&ed, "transfer_encoding_name_prefix");
        }
        if (name_is(f, "content-length") && cls++ > 0 && same_lengths(h)) {
            add_edit(&ed, (size_t)(f->name - buf), (size_t)(eol - f->name), "", 0);
            add_cat(&ed, "duplicate_content_length");
        }
    }
    if (all) {
        int connect = span_eq(h->method, h->method_len, "CONNECT", 7);
        struct http_parser_url u;
        http_parser_url_init(&u);
        if (http_parser_parse_url(h->target, h->target_len, connect, &u) != 0) {
            add_edit(&ed, (size_t)(h->target - buf), h->target_len, connect ? "a:1" : "/",
                     connect ? 3 : 1);
            add_cat(&ed, "target");
        }
        if (!method_known(h->method, h->method_len)) {
            add_edit(&ed, (size_t)(h->method - buf), h->method_len, "GET", 3);
            add_cat(&ed, "method");
        }
    }
    if (ed.n == 0)
        return NULL;
    /* a field edit never overlaps another: each covers its own line or
     * bytes within it, except a removed duplicate line whose tabs were
     * also replaced: drop edits inside a removed line */
    for (size_t i = 0; i < ed.n; i++)
        for (size_t j = 0; j < ed.n; j++)
            if (i != j && ed.e[j].n > 1 && ed.e[i].off >= ed.e[j].off &&
                ed.e[i].off + ed.e[i].n <= ed.e[j].off + ed.e[j].n &&
                !(ed.e[i].off == ed.e[j].off && ed.e[i].n == ed.e[j].n)) {
                ed.e[i] = ed.e[--ed.n];
                i = (size_t)-1;
                break;
            }
    snprintf(cat, cat_cap, "%s", ed.cat);
    return apply_edits(buf, len, &ed, out_len);
}

/* ---- one input ---- */

static struct ours our_result, our_result2;
static struct theirs their_result, their_result2;

/* Neutralises the categories of our parse of buf and compares again; counts
 * the input in the category when both then agree, else as a failure. */
static void explain(struct tally *t, const char *buf, size_t len, const struct ours *o, int all,
                    const char *problem)
{
    char cat[160], name[200];
    size_t nl;
    char *n = neutralise(buf, len, o, all, &nl, cat, sizeof(cat));
    if (!n) {
        failure(t, problem, buf, len);
        return;
    }
    struct ours *o2 = &our_result2;
    struct theirs *th2 = &their_result2;
    const char *what;
    our_parse(o2, n, nl);
    their_parse(th2, n, nl);
    enum verdict v = o2->rc > 0 && th2->complete ? compare_heads(o2, th2, &what) : DIFFER;
    /* and the neutralisation must not change how we read the head */
    if (o2->rc > 0 &&
        (o2->h.content_length != o->h.content_length || o2->h.chunked != o->h.chunked ||
         o2->h.keep_alive != o->h.keep_alive || o2->h.expect_continue != o->h.expect_continue ||
         o2->h.minor != o->h.minor || (o2->h.host == NULL) != (o->h.host == NULL)))
        v = DIFFER;
    if (v != AGREE && v != KEEP_ALIVE_SAFER) {
        snprintf(name, sizeof(name), "%s, also once %s are neutralised", problem, cat);
        failure(t, name, buf, len);
    } else {
        snprintf(name, sizeof(name), "%s: %s",
                 all ? "we accept, http_parser refuses" : "both accept, keep-alive differs", cat);
        count(t, name, buf, len);
    }
    free(n);
}

static void diff_one(struct tally *t, const char *buf, size_t len)
{
    struct ours *o = &our_result;
    struct theirs *th = &their_result;
    char name[200];
    t->inputs++;
    our_parse(o, buf, len);
    their_parse(th, buf, len);
    const char *what;
    if (o->rc == 0) {
        if (th->complete)
            failure(t, "incomplete for us, a complete head for http_parser", buf, len);
        else
            count(t, "incomplete for us", buf, len);
        return;
    }
    if (o->rc < 0) {
        snprintf(name, sizeof(name), "%s: %ld %s",
                 th->complete ? "we refuse, they accept" : "both refuse", -o->rc, o->why);
        count(t, name, buf, len);
        return;
    }
    if (th->complete) {
        enum verdict v = compare_heads(o, th, &what);
        if (v == AGREE) {
            count(t, "both accept, same head", buf, len);
        } else if (v == KEEP_ALIVE_SAFER) {
            count(t, "both accept; we close, http_parser keeps alive", buf, len);
        } else if (v == KEEP_ALIVE_DIFFERS) {
            explain(t, buf, len, o, 0, "both accept; we keep alive, http_parser closes");
        } else {
            snprintf(name, sizeof(name), "both accept, %s differs", what);
            failure(t, name, buf, len);
        }
        return;
    }
    /* we accept, http_parser does not: only in a documented category */
    snprintf(name, sizeof(name), "we accept, http_parser %s (%s)",
             th->err == HPE_OK ? "waits" : "refuses", http_errno_name(th->err));
    explain(t, buf, len, o, 1, name);
}

/* ---- the tests ---- */

static const char interesting[] = "\0\t\n\r \"#%+,-./01579:;=?@AFHTZ[\\]`acefklsxz{|}~\x7f\x80\xff";
#define N_INTERESTING (sizeof(interesting) - 1)

static void corpus_agrees(void **state)
{
    static struct tally t;
    memset(&t, 0, sizeof(t));
    for (size_t i = 0; i < n_inputs; i++)
        diff_one(&t, inputs[i].bytes, inputs[i].len);
    print_tally(&t, "corpus and table");
    if (t.failures)
        fail_msg("%zu disagreements", t.failures);
}

static void variants_agree(void **state)
{
    static struct tally t;
    memset(&t, 0, sizeof(t));
    char *v = malloc(20000);
    assert_non_null(v);
    for (size_t k = 0; k < n_inputs; k++) {
        const char *s = inputs[k].bytes;
        size_t len = inputs[k].len;
        if (len > 4096)
            continue;
        for (size_t i = 0; i < len; i++) {
            /* substitutions */
            memcpy(v, s, len);
            for (size_t b = 0; b < N_INTERESTING; b++) {
                if (interesting[b] == s[i])
                    continue;
                v[i] = interesting[b];
                diff_one(&t, v, len);
            }
            /* deletion */
            memcpy(v, s, i);
            memcpy(v + i, s + i + 1, len - i - 1);
            diff_one(&t, v, len - 1);
        }
        for (size_t i = 0; i <= len; i++) {
            /* insertions */
            memcpy(v, s, i);
            memcpy(v + i + 1, s + i, len - i);
            for (size_t b = 0; b < N_INTERESTING; b++) {
                v[i] = interesting[b];
                diff_one(&t, v, len + 1);
            }
        }
        /* every line doubled */
        for (size_t a = 0; a < len;) {
            const char *nl = memchr(s + a, '\n', len - a);
            size_t e = nl ? (size_t)(nl - s) + 1 : len;
            memcpy(v, s, e);
            memcpy(v + e, s + a, e - a);
            memcpy(v + e + (e - a), s + e, len - e);
            diff_one(&t, v, len + (e - a));
            a = e;
        }
    }
    free(v);
    print_tally(&t, "variants");
    if (t.failures)
        fail_msg("%zu disagreements", t.failures);
}

/* The categories above are reached: a sanity check that the comparison
 * itself works (both parsers see the same heads). */
static void comparison_sees_known_differences(void **state)
{
    static const struct {
        const char *in;
        const char *cat;
    } known[] = {
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "both accept, same head"},
        {"BREW / HTTP/1.1\r\nHost: x\r\n\r\n", "we accept, http_parser refuses: method"},
        {"GET 1 HTTP/1.1\r\nHost: x\r\n\r\n", "we accept, http_parser refuses: target"},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
         "we accept, http_parser refuses: duplicate_content_length"},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
         "both accept; we close, http_parser keeps alive"},
        {"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
         "we refuse, they accept: 400 more than one Host field"},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         "both refuse: 400 differing Content-Length fields"},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\t\r\n\r\nx",
         "we accept, http_parser refuses: htab_ows"},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\t\r\n\r\n",
         "we accept, http_parser refuses: htab_ows"},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encodings: x\r\n\r\nx",
         "we accept, http_parser refuses: transfer_encoding_name_prefix"},
        {"GET / HTTP/1.0\r\nConnection: ,keep-alive\r\n\r\n",
         "both accept, keep-alive differs: connection_empty_element"},
        {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
         "we refuse, they accept: 501 unsupported transfer coding"},
        {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
         "both refuse: 400 Transfer-Encoding does not end with chunked"},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        static struct tally t;
        memset(&t, 0, sizeof(t));
        diff_one(&t, known[i].in, strlen(known[i].in));
        if (t.failures || t.n != 1 || strcmp(t.c[0].name, known[i].cat) != 0)
            fail_msg("\"%s\": %s, want %s", known[i].in, t.n ? t.c[0].name : "a failure",
                     known[i].cat);
    }
}

/* And a difference is seen: our parse of one head against http_parser's of
 * another. */
static void comparison_detects_differences(void **state)
{
    static const struct {
        const char *a, *b, *what;
    } pairs[] = {
        {"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", "GET /b HTTP/1.1\r\nHost: x\r\n\r\n", "target"},
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "PUT / HTTP/1.1\r\nHost: x\r\n\r\n", "method"},
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET / HTTP/1.1\r\nHost: y\r\n\r\n", "field value"},
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET / HTTP/1.1\r\nHosu: x\r\n\r\n", "field name"},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n",
         "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", "field value"},
        {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
         "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encodinx: chunked\r\n\r\n", "field name"},
        {"GET / HTTP/1.1\r\nHost: x\r\nX: chunked\r\n\r\n",
         "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "head length"},
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n\r\n",
         "head length"},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        const char *what;
        our_parse(&our_result, pairs[i].a, strlen(pairs[i].a));
        their_parse(&their_result, pairs[i].b, strlen(pairs[i].b));
        assert_true(our_result.rc > 0 && their_result.complete);
        if (compare_heads(&our_result, &their_result, &what) != DIFFER ||
            strcmp(what, pairs[i].what) != 0)
            fail_msg("%s against %s: %s, want %s", pairs[i].a, pairs[i].b, what ? what : "same",
                     pairs[i].what);
    }
    /* the framing, with http_parser's result altered after the fact */
    static const char cl[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n";
    static const char te[] = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    const char *what;
    our_parse(&our_result, cl, sizeof(cl) - 1);
    their_parse(&their_result, cl, sizeof(cl) - 1);
    assert_int_equal(compare_heads(&our_result, &their_result, &what), AGREE);
    their_result.p.content_length = 11;
    assert_int_equal(compare_heads(&our_result, &their_result, &what), DIFFER);
    assert_string_equal(what, "Content-Length");
    their_result.p.content_length = 10;
    their_result.p.flags &= ~F_CONTENTLENGTH;
    assert_int_equal(compare_heads(&our_result, &their_result, &what), DIFFER);
    assert_string_equal(what, "Content-Length");
    our_parse(&our_result, te, sizeof(te) - 1);
    their_parse(&their_result, te, sizeof(te) - 1);
    assert_int_equal(compare_heads(&our_result, &their_result, &what), AGREE);
    their_result.p.flags &= ~F_CHUNKED;
    assert_int_equal(compare_heads(&our_result, &their_result, &what), DIFFER);
    assert_string_equal(what, "chunked");
}

int main(void)
{
    unsigned long v = http_parser_version();
    print_message("http_parser %lu.%lu.%lu\n", (v >> 16) & 255, (v >> 8) & 255, v & 255);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(comparison_sees_known_differences),
        cmocka_unit_test(comparison_detects_differences),
        cmocka_unit_test(corpus_agrees),
        cmocka_unit_test(variants_agree),
    };
    return cmocka_run_group_tests(tests, load_inputs, free_inputs);
}
