/* Configuration: a Lua file returning a table, validated up front into an
 * immutable, reference-counted struct config. A reload builds a new one and
 * swaps it in; requests keep the one they started with until they finish. */
#ifndef WX_CONFIG_H
#define WX_CONFIG_H
#include <stddef.h>

struct url_http;

/* What a WeChat app is: which logins it can serve. */
enum config_app_kind {
    APP_OFFICIAL_ACCOUNT = 0, /* 公众号: web authorization inside WeChat (/auth) */
    APP_WEBSITE,              /* Open Platform website app: PC QR login (snsapi_login) */
    APP_MINIPROGRAM,          /* Mini Program or Mini Game: wx.login() codes (/api/mp/login) */
};

struct config_app {
    char *name;
    enum config_app_kind kind;
    int minigame; /* kind = "minigame" (a Mini Program as far as logins go) */
    char *appid;
    char *secret;   /* from env or file, never from the config text */
    char **domains; /* registered callback domains (informational) */
    size_t n_domains;
};

struct config_campaign {
    char *name;
    const struct config_app *app;         /* the official account (web login) */
    const struct config_app *website_app; /* PC QR login for desktop browsers, or NULL */
    char *pc_style; /* the QR embedded in the gateway's page (inline form): "black" |
                       "white"; NULL: a redirect to WeChat's own QR page */
    char *pc_href;  /* the inline form's CSS URL, or NULL */
    const struct config_app **mini_apps; /* Mini Programs / Games that log in here */
    size_t n_mini_apps;
    char *scope;                /* snsapi_base | snsapi_userinfo */
    int scope_override;         /* may /auth?scope= change it */
    char **allow;               /* allowed return URL prefixes: scheme://host[:port][/path] */
    struct url_http *allow_url; /* the same, parsed once at load */
    size_t n_allow;
    unsigned long allow_serial; /* unique per config load (login.c caches verdicts) */
    char *script;               /* absolute path or NULL */
    int force_popup;
    int force_snapshot;
    char *lang;               /* zh_CN | zh_TW | en */
    int ticket_ttl;           /* seconds */
    int require_state_cookie; /* a callback without the cookie restarts the login */
};

struct config_route {
    char *prefix;    /* "/hello" */
    char *script;    /* absolute path, or NULL when module is set */
    char *module;    /* an embedded Lua module ("sandbox") */
    char **opt_keys; /* module routes: options passed to module.new() */
    char **opt_vals;
    size_t n_opts;
};

struct config_limits {
    size_t max_header_size; /* bytes of request line + headers */
    size_t max_uri_length;
    size_t max_body_size;
    int max_connections;   /* per worker */
    int header_timeout_ms; /* whole request head must arrive within */
    int max_headers;       /* header fields in a request head */
    int read_timeout_ms;   /* inactivity while reading a request body */
    int write_timeout_ms;  /* inactivity while writing a reply (a slow reader) */
    int keepalive_timeout_ms;
    int drain_timeout_ms;    /* SIGTERM: how long in-flight requests may take */
    int watchdog_ms;         /* a worker's loop stuck this long stops the process */
    int auth_per_minute;     /* /auth requests per client and minute; 0: no limit */
    int mp_login_per_minute; /* POST /api/mp/login per client and minute; 0: no limit */
    char **trusted_proxies;  /* peers whose X-Forwarded-For names the client */
    size_t n_trusted_proxies;
};

struct config {
    int refs;   /* atomic; see config_retain/config_release */
    char *path; /* the config file */
    char *dir;  /* its directory: relative paths start here */

    char *listen; /* "host:port" as written */
    char *listen_host;
    int listen_port;
    char *admin_listen; /* optional operators' listener (/metrics): "host:port" */
    char *admin_host;
    int admin_port;
    char *tls_listen; /* optional HTTPS listener: "host:port" */
    char *tls_host;
    int tls_port;
    char *tls_cert;
    char *tls_key;
    char *public_url; /* e.g. https://login.example.com */
    int workers;
    int require_wechat_browser; /* /auth outside WeChat shows "open in WeChat" */
    char *store;                /* "memory" or redis://... */
    char *log_level;

    char *cookie_secret;
    char *ticket_secret;
    char *token_key; /* encrypts users' tokens at rest */
    /* dashboard.password: /dashboard behind HTTP Basic (any user name); on
     * the public listener it is off without one */
    char *dashboard_password;
    int dashboard_counters_off; /* dashboard.counters = false: no funnel counts */
    char **api_keys;
    size_t n_api_keys;

    char *wechat_open_base; /* https://open.weixin.qq.com */
    char *wechat_api_base;  /* https://api.weixin.qq.com */
    char *wechat_ca_file;
    int upstream_connect_timeout_ms;
    int upstream_timeout_ms;

    int lua_cpu_budget_ms; /* per resume of a coroutine */
    int lua_memory_mb;     /* per worker VM */
    int lua_trusted;       /* scripts get the whole library: budgets do not hold */
    char **lua_env;        /* environment variables scripts may read (wx.getenv) */
    size_t n_lua_env;

    struct config_limits limits;

    struct config_app *apps;
    size_t n_apps;
    struct config_campaign *campaigns;
    size_t n_campaigns;
    char *default_campaign;
    struct config_route *routes;
    size_t n_routes;
};

/* What `wxgate check` and the log say of lua.trusted = true. */
extern const char config_trusted_warning[];

/* Loads and validates. On failure returns NULL and writes one message per
 * problem ("config: KEY.PATH: reason") into err (NUL-terminated). */
struct config *config_load(const char *path, char *err, size_t errsz);
/* Validates a config table already on top of L's stack (used by demo). */
struct config *config_from_lua(void *L, const char *path, char *err, size_t errsz);

struct config *config_retain(struct config *c);
void config_release(struct config *c);
/* config_release for callbacks that take a void * (arena_on_reset). */
void config_release_cb(void *c);

const struct config_app *config_find_app(const struct config *c, const char *name_or_appid);
/* The config's name of a kind ("official_account", "website", "miniprogram"). */
const char *config_app_kind_name(enum config_app_kind kind);
/* The first campaign whose miniprogram_apps names app, or NULL. */
const struct config_campaign *config_campaign_of_mini_app(const struct config *c,
                                                          const struct config_app *app);
const struct config_campaign *config_find_campaign(const struct config *c, const char *name);

/* Every secret of c, for log_set_secrets(). Returns a malloc'd array of
 * borrowed pointers (free only the array). */
const char **config_secrets(const struct config *c, size_t *n);

/* Splits "host:port" / "[v6]:port" / ":port". 0 ok. host is malloc'd. */
int config_parse_listen(const char *s, char **host, int *port);

#endif
