/* The server: worker threads, each with its own event loop, HTTP server,
 * upstream client, store connection and Lua VM, sharing the listening port
 * through SO_REUSEPORT; the main thread handles signals (SIGHUP reload,
 * SIGTERM/SIGINT drain). */
#ifndef WX_SERVER_H
#define WX_SERVER_H
#include <pthread.h>

#include "store.h"

struct event;
struct event_base;
struct config;
struct config_campaign;
struct http_server;
struct http_req;
struct fetch_loop;
struct wxlua_vm;
struct server;
struct watchdog_slot;

struct worker {
    int id;
    pthread_t thread;
    struct server *server;
    struct event_base *base;
    int listen_fd;
    struct http_server *http;
    int tls_fd;
    struct http_server *https; /* when the config has a tls listener */
    struct http_server *admin; /* when the config has an admin_listen */
    struct fetch_loop *fetch;
    store_conn_t *store;
    struct config *cfg;     /* the config this worker serves with */
    struct wxlua_vm *vm;    /* built from cfg */
    struct config *pending; /* a reloaded config handed over by main */
    struct event *reload_ev;
    struct event *stop_ev;
    struct event *drain_ev;
    double drain_deadline;
    struct watchdog_slot *wd; /* beaten by this worker's loop */
};

struct server {
    struct config *cfg;
    store_t *store;
    int n_workers;
    struct worker *workers;
    struct event_base *base; /* the main thread's: signals only */
    char *config_path;       /* NULL: nothing to reload on SIGHUP */
    int port;                /* the ports actually bound */
    int tls_port;
    int admin_port;
    void *tls; /* SSL_CTX shared by the workers */
};

/* Called once every worker listens, before serving (e.g. to print URLs). */
typedef void (*server_ready_fn)(const struct server *s, void *arg);

/* Runs until SIGTERM/SIGINT; returns the process exit code. Takes cfg. */
int server_run(struct config *cfg, const char *config_path, server_ready_fn ready, void *arg);

/* Routing of one request on a worker (server.c); handlers live in handler_*.c. */
void handle_health(struct worker *w, struct http_req *r);
void handle_auth(struct worker *w, struct http_req *r);
/* Starts a login for campaign c (handler_auth.c): stores a new state, sets
 * the cookie and answers 302 to WeChat's authorize page. /callback uses it
 * to restart a failed login. */
void auth_start_login(struct worker *w, struct http_req *r, const struct config *cfg,
                      const struct config_campaign *c, const char *scope, const char *return_url,
                      int restarts);
void handle_callback(struct worker *w, struct http_req *r);
void handle_api_ticket(struct worker *w, struct http_req *r);
void handle_api_user(struct worker *w, struct http_req *r);
void handle_mp_login(struct worker *w, struct http_req *r); /* handler_mp.c */
void handle_mp_phone(struct worker *w, struct http_req *r);
void handle_metrics(struct worker *w, struct http_req *r);
/* Authorization: Bearer with one of api_keys, or a 401 (handler_api.c). */
int api_authorized(struct worker *w, struct http_req *r);
/* The campaign funnel (handler_stats.c, handler_dashboard.c): JSON with the
 * API key and the page behind dashboard.password on the public listener;
 * open on the admin listener. */
void handle_campaign_stats(struct worker *w, struct http_req *r);
void handle_campaign_stats_admin(struct worker *w, struct http_req *r);
void handle_dashboard(struct worker *w, struct http_req *r);
void handle_dashboard_admin(struct worker *w, struct http_req *r);
/* The configured campaigns' names (malloc'd array, the names borrowed from
 * cfg), listed by both even before their first login (handler_stats.c). */
const char **stats_campaign_names(const struct config *cfg, size_t *n);
void handle_jssdk(struct worker *w, struct http_req *r);
#ifdef WXGATE_TEST_HOOKS
void handle_test_hang(struct worker *w, struct http_req *r); /* handler_test.c */
#endif

#endif
