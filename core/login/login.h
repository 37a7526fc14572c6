/* The login's records and codecs, without I/O: return-URL allow-lists, the
 * state record, the state-binding cookie, tickets, users' token records and
 * the store keys of every record, which /auth and /callback
 * (handler_auth.c, handler_callback.c) and /api/user build on. */
#ifndef WX_LOGIN_H
#define WX_LOGIN_H
#include <stddef.h>

struct config;
struct config_campaign;
struct http_req;
struct lua_State;
struct worker;

#define LOGIN_STATE_LEN   32   /* base62 characters: ~190 bits */
#define LOGIN_STATE_TTL   1800 /* seconds a record is kept (to restart used ones) */
#define LOGIN_STATE_VALID 600  /* seconds a state may be called back */
#define LOGIN_COOKIE      "wxgate_state"
#define LOGIN_TOKENS_TTL  (30 * 86400) /* seconds a user's token record is kept */

/* Every record the gateway keeps in the store, by key prefix: the one place
 * that names them (Redis adds its own prefix, "wxgate:", in front).
 *   st:{STATE}               a login state (struct login_state), LOGIN_STATE_TTL
 *   su:{STATE}               how a used state's callback ended (handler_callback.c)
 *   cx:{STATE}:APPID:CODE    a code's exchange: the claim, then its outcome
 *   ut:APPID:OPENID          a user's sealed tokens (login_tokens_seal)
 *   tk:HMAC                  a ticket: campaign TAB user record (login_ticket_key, login_ticket_value)
 *   sk:{APPID}:OPENID        a Mini Program user's sealed session_key (handler_mp.c)
 *   q:{APPID}:DAY            cgi-bin/token calls made today (jssdk.c)
 *   jt:{APPID}, bt:{APPID}   the sealed jsapi ticket and basic access_token (jssdk.c)
 *   lk:{APPID}, fence:{APPID}  the JS-SDK owner's lock and fencing token (jssdk.c)
 *   rl:CLIENT:MINUTE   /auth requests of a client in a minute (handler_auth.c)
 *   lua:KEY            wx.store's keys: scripts see nothing else (lua_store.c)
 * The {braces} are Redis Cluster hash tags: the records of one login (state,
 * used mark, code claim) live in one slot, and so on one primary, as do the
 * JS-SDK records of one app; a failover then takes all of them or none
 * (the lock and fencing number never disagree), and no call needs two
 * slots. */
#define KEY_STATE        "st:"
#define KEY_STATE_USED   "su:"
#define KEY_CODE         "cx:"
#define KEY_TOKENS       "ut:"
#define KEY_TICKET       "tk:"
#define KEY_SESSION      "sk:"
#define KEY_JSSDK_QUOTA  "q:"
#define KEY_JSAPI_TICKET "jt:"
#define KEY_BASIC_TOKEN  "bt:"
#define KEY_JSSDK_LOCK   "lk:"
#define KEY_JSSDK_FENCE  "fence:"
#define KEY_SCRIPTS      "lua:"
#define KEY_RATE         "rl:"

/* Is url an absolute http(s) URL on the campaign's allow-list? Exact scheme,
 * host and port (default ports normalized), optional path prefix; refuses
 * userinfo, control characters, backslashes, dot segments and anything that
 * is not plainly an absolute URL. */
int login_return_allowed(const struct config_campaign *c, const char *url);

/* A login state record, as stored under "st:STATE". */
struct login_state {
    long created; /* unix seconds */
    int restarts; /* fresh authorizations after a failed callback */
    char scope[32];
    char campaign[128];
    char return_url[2048];
};
/* Encodes into out (tab-separated); returns length or -1. */
int login_state_encode(const struct login_state *s, char *out, size_t outsz);
int login_state_decode(const char *v, size_t len, struct login_state *s);

/* The cookie holds the MACs of the browser's most recent states, so that a
 * callback can be tied to the browser that started it. */
void login_state_mac(const struct config *cfg, const char *state, char out[23]);
/* 1: the cookie holds mac; 0: it holds others only; -1: no usable cookie. */
int login_cookie_has(const char *cookie, const char *mac);
/* Writes the new cookie value: mac first, then up to 3 previous ones. */
void login_cookie_push(const char *cookie, const char *mac, char *out, size_t outsz);
/* Adds the Set-Cookie header binding state to this browser. */
void login_set_state_cookie(struct http_req *r, const struct config *cfg, const char *old,
                            const char *state);

/* The store key of a ticket: "tk:" + HMAC(ticket_secret, ticket), so that a
 * store dump does not hold redeemable tickets. */
void login_ticket_key(const struct config *cfg, const char *ticket, char out[64]);
/* A ticket's value in the store: its campaign, a tab, then the user record
 * (JSON) that POST /api/ticket answers. With the campaign up front the
 * redemption counts it (the dashboard's funnel) without parsing the record.
 * malloc'd, or NULL. */
char *login_ticket_value(const char *campaign, const char *user_json);
/* The user record of a ticket's value, and its campaign into campaign
 * ("" for a value written without one). */
const char *login_ticket_record(const char *value, char *campaign, size_t size);

/* A sealed record: with token_key configured, AES-GCM bound to the store key
 * (a value moved to another key does not open); without it, the record as
 * is, which must start with "v1\t". Both return malloc'd strings, or NULL. */
char *login_token_seal(const struct config *cfg, const char *key, const char *record, size_t *len);
char *login_token_open(const struct config *cfg, const char *key, const char *v, size_t len);

/* A user's tokens, as kept under "ut:APPID:OPENID" for /api/user. */
struct login_tokens {
    char *access;        /* malloc'd; wiped with login_token_free */
    char *refresh;       /* malloc'd, or NULL */
    long access_expires; /* unix seconds */
    char *scope;         /* malloc'd */
};
/* The stored form: "v1\tACCESS\tREFRESH\tACCESS_EXPIRES\tRECORD_EXPIRES\t
 * SCOPE", sealed (login_token_seal). A malloc'd value with *len set, or NULL. */
char *login_tokens_seal(const struct config *cfg, const char *key, const struct login_tokens *t,
                        size_t *len);
/* Reads a stored value into t (its strings malloc'd: the caller frees them
 * with login_token_free). 0, or -1 if it is not a token record of key. */
int login_tokens_open(const struct config *cfg, const char *key, const char *v, size_t len,
                      struct login_tokens *t);
/* Frees a token (access or refresh) or an opened token record after
 * overwriting it, so that no token outlives its use in freed memory.
 * NULL is a no-op. */
void login_token_free(char *token);

/* The redirect_uri given to WeChat: public_url + "/callback". */
void login_redirect_uri(const struct config *cfg, char *out, size_t outsz);

/* Is this login's scope the PC website login's (snsapi_login)? */
int login_is_pc(const char *scope);

/* Pushes the ctx table every campaign hook gets (authorize, login, denied,
 * error): { campaign, app, appid, scope, return_url }. */
void login_push_hook_ctx(struct lua_State *L, const struct config_campaign *c, const char *scope,
                         const char *return_url);

/* Error pages of the flow, never showing upstream details. */
void login_page_expired(struct http_req *r, const char *retry);
void login_page_upstream(struct http_req *r, const char *retry);

#endif
