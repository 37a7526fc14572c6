/* Lua patterns under a budget (see lua_pattern.h).
 *
 * The matcher is a backtracking one, as LuaJIT's: do_match walks the
 * pattern, recursing where a choice must be undone (?, *, -, captures) and
 * looping where it need not. Each recursion, each character tried by an
 * expansion and each start position counts as a step; every STEP_CHECK
 * steps the runtime's budget function is asked, and the search is abandoned
 * with an error when the budget is spent. */
#include "lua_pattern.h"

#include <lauxlib.h>
#include <stddef.h>
#include <string.h>

#define MAX_CAPTURES 32
#define MAX_DEPTH    200  /* recursion, as LuaJIT's "pattern too complex" */
#define STEP_CHECK   4096 /* steps between two budget checks */
#define CAP_OPEN     (-1) /* a capture whose ')' is not reached yet */
#define CAP_POSITION (-2) /* () */

struct matcher {
    lua_State *L;
    wxlua_budget_fn over_budget;
    const char *src, *src_end; /* the subject */
    const char *pat_end;
    unsigned steps;
    int depth;
    int level; /* captures opened */
    struct {
        const char *start;
        ptrdiff_t len; /* or CAP_OPEN, CAP_POSITION */
    } cap[MAX_CAPTURES];
};

static void count_step(struct matcher *m)
{
    if (++m->steps % STEP_CHECK == 0 && m->over_budget && m->over_budget(m->L))
        luaL_error(m->L, "cpu budget exceeded");
}

/* ---- character classes (ASCII, as LuaJIT's) ---- */

static int is_upper(int c) { return c >= 'A' && c <= 'Z'; }
static int is_lower(int c) { return c >= 'a' && c <= 'z'; }
static int is_alpha(int c) { return is_upper(c) || is_lower(c); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alnum(int c) { return is_alpha(c) || is_digit(c); }
static int is_space(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static int is_cntrl(int c) { return c < 32 || c == 127; }
static int is_graph(int c) { return c > 32 && c < 127; }
static int is_punct(int c) { return is_graph(c) && !is_alnum(c); }
static int is_xdigit(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Does c belong to %cl? A letter that names no class stands for itself. */
static int in_class(int c, int cl)
{
    int res;
    switch (cl | 0x20) {
    case 'a': res = is_alpha(c); break;
    case 'c': res = is_cntrl(c); break;
    case 'd': res = is_digit(c); break;
    case 'g': res = is_graph(c); break;
    case 'l': res = is_lower(c); break;
    case 'p': res = is_punct(c); break;
    case 's': res = is_space(c); break;
    case 'u': res = is_upper(c); break;
    case 'w': res = is_alnum(c); break;
    case 'x': res = is_xdigit(c); break;
    case 'z': res = c == 0; break;
    default: return cl == c;
    }
    return is_upper(cl) ? !res : res;
}

/* p is at a '[' whose matching ']' is at close: does c belong to the set? */
static int in_set(int c, const char *p, const char *close)
{
    int want = 1;
    p++;
    if (*p == '^') {
        want = 0;
        p++;
    }
    for (; p < close; p++) {
        if (*p == '%' && p + 1 < close) {
            p++;
            if (in_class(c, (unsigned char)*p))
                return want;
        } else if (p + 2 < close && p[1] == '-') {
            if ((unsigned char)*p <= c && c <= (unsigned char)p[2])
                return want;
            p += 2;
        } else if ((unsigned char)*p == c) {
            return want;
        }
    }
    return !want;
}

/* The end of the single-character class starting at p. */
static const char *class_end(struct matcher *m, const char *p)
{
    char c = *p++;
    if (c == '%') {
        if (p >= m->pat_end)
            luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c != '[')
        return p;
    if (p < m->pat_end && *p == '^')
        p++;
    /* The first character of a set is literal, even a ']'. */
    do {
        if (p >= m->pat_end)
            luaL_error(m->L, "malformed pattern (missing ']')");
        if (*p++ == '%' && p < m->pat_end)
            p++;
    } while (p >= m->pat_end || *p != ']');
    return p + 1;
}

/* Does the subject character at s match the class [p, ep)? */
static int single_matches(struct matcher *m, const char *s, const char *p, const char *ep)
{
    if (s >= m->src_end)
        return 0;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.': return 1;
    case '%': return in_class(c, (unsigned char)p[1]);
    case '[': return in_set(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

/* ---- the matcher ---- */

static const char *do_match(struct matcher *m, const char *s, const char *p);

/* %bxy: a balanced run from x to y. */
static const char *match_balance(struct matcher *m, const char *s, const char *p)
{
    if (p + 1 >= m->pat_end)
        luaL_error(m->L, "unbalanced pattern");
    if (s >= m->src_end || *s != *p)
        return NULL;
    char open = p[0], close = p[1];
    int depth = 1;
    while (++s < m->src_end) {
        count_step(m);
        if (*s == close) {
            if (--depth == 0)
                return s + 1;
        } else if (*s == open) {
            depth++;
        }
    }
    return NULL;
}

/* x* (greedy): the longest run first, then shorter ones. */
static const char *expand_greedy(struct matcher *m, const char *s, const char *p, const char *ep)
{
    ptrdiff_t n = 0;
    while (single_matches(m, s + n, p, ep)) {
        n++;
        count_step(m);
    }
    for (; n >= 0; n--) {
        count_step(m);
        const char *res = do_match(m, s + n, ep + 1);
        if (res)
            return res;
    }
    return NULL;
}

/* x- (lazy): the shortest run first, then longer ones. */
static const char *expand_lazy(struct matcher *m, const char *s, const char *p, const char *ep)
{
    for (;;) {
        count_step(m);
        const char *res = do_match(m, s, ep + 1);
        if (res)
            return res;
        if (!single_matches(m, s, p, ep))
            return NULL;
        s++;
    }
}

static const char *open_capture(struct matcher *m, const char *s, const char *p, ptrdiff_t what)
{
    if (m->level >= MAX_CAPTURES)
        luaL_error(m->L, "too many captures");
    m->cap[m->level].start = s;
    m->cap[m->level].len = what;
    m->level++;
    const char *res = do_match(m, s, p);
    if (!res)
        m->level--; /* undo */
    return res;
}

static const char *close_capture(struct matcher *m, const char *s, const char *p)
{
    int l = m->level - 1;
    while (l >= 0 && m->cap[l].len != CAP_OPEN)
        l--;
    if (l < 0)
        luaL_error(m->L, "invalid pattern capture");
    m->cap[l].len = s - m->cap[l].start;
    const char *res = do_match(m, s, p);
    if (!res)
        m->cap[l].len = CAP_OPEN; /* undo */
    return res;
}

/* %1..%9: the same text as an earlier, closed capture. */
static const char *match_backref(struct matcher *m, const char *s, int digit)
{
    int l = digit - '1';
    if (l < 0 || l >= m->level || m->cap[l].len == CAP_OPEN)
        luaL_error(m->L, "invalid capture index");
    size_t len = (size_t)m->cap[l].len;
    if ((size_t)(m->src_end - s) >= len && memcmp(m->cap[l].start, s, len) == 0)
        return s + len;
    return NULL;
}

/* Matches the pattern from p against the subject from s: the end of the
 * match, or NULL. */
static const char *do_match(struct matcher *m, const char *s, const char *p)
{
    if (++m->depth > MAX_DEPTH)
        luaL_error(m->L, "pattern too complex");
    count_step(m);
    for (;;) {
        if (p >= m->pat_end)
            break;
        if (*p == '(') {
            if (p + 1 < m->pat_end && p[1] == ')')
                s = open_capture(m, s, p + 2, CAP_POSITION);
            else
                s = open_capture(m, s, p + 1, CAP_OPEN);
            break;
        }
        if (*p == ')') {
            s = close_capture(m, s, p + 1);
            break;
        }
        if (*p == '$' && p + 1 == m->pat_end) {
            s = s == m->src_end ? s : NULL;
            break;
        }
        if (*p == '%' && p + 1 < m->pat_end) {
            if (p[1] == 'b') {
                s = match_balance(m, s, p + 2);
                if (!s)
                    break;
                p += 4;
                continue;
            }
            if (p[1] == 'f') {
                p += 2;
                if (p >= m->pat_end || *p != '[')
                    luaL_error(m->L, "missing '[' after '%%f' in pattern");
                const char *ep = class_end(m, p);
                int prev = s == m->src ? 0 : (unsigned char)s[-1];
                int cur = s < m->src_end ? (unsigned char)*s : 0;
                if (in_set(prev, p, ep - 1) || !in_set(cur, p, ep - 1)) {
                    s = NULL;
                    break;
                }
                p = ep;
                continue;
            }
            if (is_digit((unsigned char)p[1])) {
                s = match_backref(m, s, (unsigned char)p[1]);
                if (!s)
                    break;
                p += 2;
                continue;
            }
        }
        /* A single-character class, perhaps with a repetition. */
        const char *ep = class_end(m, p);
        int one = single_matches(m, s, p, ep);
        char rep = ep < m->pat_end ? *ep : '\0';
        if (rep == '?') {
            const char *res;
            if (one && (res = do_match(m, s + 1, ep + 1))) {
                s = res;
                break;
            }
            p = ep + 1;
            continue;
        }
        if (rep == '+') {
            s = one ? expand_greedy(m, s + 1, p, ep) : NULL;
            break;
        }
        if (rep == '*') {
            s = expand_greedy(m, s, p, ep);
            break;
        }
        if (rep == '-') {
            s = expand_lazy(m, s, p, ep);
            break;
        }
        if (!one) {
            s = NULL;
            break;
        }
        s++;
        p = ep;
    }
    m->depth--;
    return s;
}

/* ---- results ---- */

static void push_capture(struct matcher *m, int i, const char *s, const char *e)
{
    if (i >= m->level) {
        if (i != 0)
            luaL_error(m->L, "invalid capture index");
        lua_pushlstring(m->L, s, (size_t)(e - s)); /* no captures: the match */
        return;
    }
    ptrdiff_t len = m->cap[i].len;
    if (len == CAP_OPEN)
        luaL_error(m->L, "unfinished capture");
    if (len == CAP_POSITION)
        lua_pushinteger(m->L, m->cap[i].start - m->src + 1);
    else
        lua_pushlstring(m->L, m->cap[i].start, (size_t)len);
}

/* Pushes every capture, or the whole match (when s is set) if there are
 * none; returns how many. */
static int push_captures(struct matcher *m, const char *s, const char *e)
{
    int n = (m->level == 0 && s) ? 1 : m->level;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(m, i, s, e);
    return n;
}

static void matcher_init(struct matcher *m, lua_State *L, const char *s, size_t ls, const char *p,
                         size_t lp)
{
    m->L = L;
    m->over_budget = (wxlua_budget_fn)lua_touserdata(L, lua_upvalueindex(1));
    m->src = s;
    m->src_end = s + ls;
    /* As LuaJIT's matcher, a pattern ends at its first NUL (%z matches one). */
    m->pat_end = p + strnlen(p, lp);
    m->steps = 0;
    m->depth = 0;
    m->level = 0;
}

/* A start position as Lua counts it (1-based, negative from the end), as a
 * 0-based offset; -1 when it lies past the end. */
static ptrdiff_t start_offset(lua_State *L, int arg, size_t len)
{
    lua_Integer i = luaL_optinteger(L, arg, 1);
    if (i < 0)
        i += (lua_Integer)len + 1;
    if (i < 1)
        i = 1;
    if ((size_t)i > len + 1)
        return -1;
    return (ptrdiff_t)i - 1;
}

static int has_specials(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; i++)
        if (p[i] != '\0' && strchr("^$*+?.([%-", p[i]))
            return 1;
    return 0;
}

static int find_or_match(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    ptrdiff_t init = start_offset(L, 3, ls);
    if (init < 0) {
        lua_pushnil(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
        const char *hit = memmem(s + init, ls - (size_t)init, p, lp);
        if (!hit) {
            lua_pushnil(L);
            return 1;
        }
        lua_pushinteger(L, hit - s + 1);
        lua_pushinteger(L, hit - s + (ptrdiff_t)lp);
        return 2;
    }
    struct matcher m;
    matcher_init(&m, L, s, ls, p, lp);
    int anchor = lp > 0 && *p == '^';
    if (anchor)
        p++;
    const char *at = s + init;
    do {
        m.level = 0;
        m.depth = 0;
        const char *e = do_match(&m, at, p);
        if (e) {
            if (!find)
                return push_captures(&m, at, e);
            lua_pushinteger(L, at - s + 1);
            lua_pushinteger(L, e - s);
            return push_captures(&m, NULL, NULL) + 2;
        }
    } while (at++ < m.src_end && !anchor);
    lua_pushnil(L);
    return 1;
}

static int str_find(lua_State *L) { return find_or_match(L, 1); }
static int str_match(lua_State *L) { return find_or_match(L, 0); }

/* The gmatch iterator: upvalues are the budget function, the subject, the
 * pattern and the next start offset. */
static int gmatch_next(lua_State *L)
{
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(2), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(3), &lp);
    struct matcher m;
    matcher_init(&m, L, s, ls, p, lp);
    for (const char *at = s + lua_tointeger(L, lua_upvalueindex(4)); at <= m.src_end; at++) {
        m.level = 0;
        m.depth = 0;
        const char *e = do_match(&m, at, p);
        if (e) {
            /* After an empty match, go on one character further. */
            lua_pushinteger(L, e - s + (e == at));
            lua_replace(L, lua_upvalueindex(4));
            return push_captures(&m, at, e);
        }
    }
    return 0;
}

static int str_gmatch(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, gmatch_next, 4);
    return 1;
}

/* A replacement string: %0..%9 name captures, %% is a %, and % before any
 * other character stands for that character. */
static void add_replacement_string(struct matcher *m, luaL_Buffer *b, const char *s, const char *e)
{
    size_t len;
    const char *r = lua_tolstring(m->L, 3, &len);
    for (size_t i = 0; i < len; i++) {
        if (r[i] != '%' || i + 1 == len) {
            luaL_addchar(b, r[i]);
            continue;
        }
        i++;
        if (!is_digit((unsigned char)r[i])) {
            luaL_addchar(b, r[i]);
        } else if (r[i] == '0') {
            luaL_addlstring(b, s, (size_t)(e - s));
        } else {
            push_capture(m, r[i] - '1', s, e);
            luaL_addvalue(b);
        }
    }
}

static void add_replacement(struct matcher *m, luaL_Buffer *b, const char *s, const char *e)
{
    lua_State *L = m->L;
    switch (lua_type(L, 3)) {
    case LUA_TNUMBER:
    case LUA_TSTRING: add_replacement_string(m, b, s, e); return;
    case LUA_TFUNCTION:
        lua_pushvalue(L, 3);
        lua_call(L, push_captures(m, s, e), 1);
        break;
    default: /* a table */
        push_capture(m, 0, s, e);
        lua_gettable(L, 3);
        break;
    }
    if (!lua_toboolean(L, -1)) { /* nil or false: keep the original text */
        lua_pop(L, 1);
        lua_pushlstring(L, s, (size_t)(e - s));
    } else if (!lua_isstring(L, -1)) {
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    }
    luaL_addvalue(b);
}

static int str_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int rt = lua_type(L, 3);
    luaL_argcheck(L,
                  rt == LUA_TNUMBER || rt == LUA_TSTRING || rt == LUA_TFUNCTION || rt == LUA_TTABLE,
                  3, "string/function/table expected");
    lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    struct matcher m;
    matcher_init(&m, L, s, ls, p, lp);
    int anchor = lp > 0 && *p == '^';
    if (anchor)
        p++;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *at = s;
    lua_Integer n = 0;
    while (n < max) {
        m.level = 0;
        m.depth = 0;
        const char *e = do_match(&m, at, p);
        if (e) {
            n++;
            add_replacement(&m, &b, at, e);
        }
        if (e && e > at)
            at = e;
        else if (at < m.src_end)
            luaL_addchar(&b, *at++);
        else
            break;
        if (anchor)
            break;
    }
    luaL_addlstring(&b, at, (size_t)(m.src_end - at));
    luaL_pushresult(&b);
    lua_pushinteger(L, n);
    return 2;
}

void wxlua_pattern_inject(lua_State *L, wxlua_budget_fn over_budget)
{
    static const luaL_Reg fns[] = {
        {"find", str_find}, {"match", str_match}, {"gmatch", str_gmatch},
        {"gsub", str_gsub}, {NULL, NULL},
    };
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushlightuserdata(L, (void *)over_budget);
        lua_pushcclosure(L, f->func, 1);
        lua_setfield(L, -2, f->name);
    }
}
