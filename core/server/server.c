/* Workers, routing and signals (see server.h).
 *
 * Reload is two-phase so that it is atomic across workers: the main thread
 * loads and validates the new config and compiles every script once; only
 * then does each worker build its VM from it (which cannot fail on the
 * script's account any more) and swap it in between two requests. Requests
 * already running finish on the config and VM they started with. */
#include "server.h"

#include "arena.h"
#include "config.h"
#include "fetch.h"
#include "funnel.h"
#include "funnel_sync.h"
#include "http.h"
#include "jssdk.h"
#include "log.h"
#include "lua_runtime.h"
#include "metrics.h"
#include "page.h"
#include "service_notify.h"
#include "tls.h"
#include "watchdog.h"

#include <openssl/ssl.h>

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void (*route_handler)(struct worker *, struct http_req *);

/* The operators' endpoints: on the admin listener when admin_listen is set,
 * else on the public one. /healthz is everywhere (load balancers). */
static route_handler operator_route(const char *path)
{
    if (strcmp(path, "/metrics") == 0)
        return handle_metrics;
    return NULL;
}

static void on_request(struct http_req *r, void *arg)
{
    struct worker *w = arg;
    const char *path = http_req_path(r);
    watchdog_note_request(w->wd, http_req_id(r), http_req_method(r), path);
    static const struct {
        const char *path;
        route_handler handle;
    } routes[] = {
        {"/healthz", handle_health},        {"/auth", handle_auth},
        {"/callback", handle_callback},     {"/api/ticket", handle_api_ticket},
        {"/api/user", handle_api_user},     {"/jssdk/config", handle_jssdk},
        {"/api/mp/login", handle_mp_login}, {"/api/mp/phone", handle_mp_phone},
        {"/dashboard", handle_dashboard},   {"/api/campaigns/stats", handle_campaign_stats},
#ifdef WXGATE_TEST_HOOKS
        {"/__test/hang", handle_test_hang},
#endif
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(path, routes[i].path) == 0) {
            routes[i].handle(w, r);
            return;
        }
    }
    route_handler op = w->admin ? NULL : operator_route(path);
    if (op) {
        op(w, r);
        return;
    }
    if (wxlua_vm_route(w->vm, r))
        return;
    page_error(r, 404, "页面不存在", "Page not found.", NULL);
}

/* The admin listener: the operators' endpoints and /healthz, nothing else
 * (no logins, no Lua routes). */
static void on_admin_request(struct http_req *r, void *arg)
{
    struct worker *w = arg;
    const char *path = http_req_path(r);
    watchdog_note_request(w->wd, http_req_id(r), http_req_method(r), path);
    route_handler op = strcmp(path, "/healthz") == 0               ? handle_health
                       : strcmp(path, "/dashboard") == 0           ? handle_dashboard_admin
                       : strcmp(path, "/api/campaigns/stats") == 0 ? handle_campaign_stats_admin
                                                                   : operator_route(path);
    if (op)
        op(w, r);
    else
        page_error(r, 404, "页面不存在", "Page not found.", NULL);
}

static void apply_secrets(const struct config *c)
{
    size_t n;
    const char **v = config_secrets(c, &n);
    log_set_secrets(v, n);
    free(v);
}

static void apply_log_level(const struct config *c)
{
    enum log_level lvl;
    if (log_parse_level(c->log_level, &lvl) == 0)
        log_set_level(lvl);
}

/* Worker side of a reload: swap in what the main thread prepared. */
static void on_reload(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct config *fresh = __atomic_exchange_n(&w->pending, NULL, __ATOMIC_ACQ_REL);
    if (!fresh)
        return;
    char err[2048];
    struct wxlua_vm *vm = wxlua_vm_new(w, fresh, err, sizeof(err));
    if (!vm) {
        log_error("worker %d: reload failed, keeping the old version: %s", w->id, err);
        config_release(fresh);
        return;
    }
    wxlua_vm_retire(w->vm);
    w->vm = vm;
    config_release(w->cfg);
    w->cfg = fresh;
    http_server_set_limits(w->http, &fresh->limits);
    if (w->https)
        http_server_set_limits(w->https, &fresh->limits);
    if (w->admin)
        http_server_set_limits(w->admin, &fresh->limits);
    log_info("worker %d: reloaded", w->id);
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    int active = http_server_busy(w->http) + (w->https ? http_server_busy(w->https) : 0) +
                 (w->admin ? http_server_busy(w->admin) : 0) + jssdk_pending();
    if (active == 0 || http_now_ms() > w->drain_deadline) {
        if (active)
            log_warn("worker %d: drain timeout with %d requests in flight", w->id, active);
        event_base_loopexit(w->base, NULL);
        return;
    }
    struct timeval tv = {0, 20000};
    event_add(w->drain_ev, &tv);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    http_server_stop_accepting(w->http);
    if (w->https)
        http_server_stop_accepting(w->https);
    if (w->admin)
        http_server_stop_accepting(w->admin);
    w->drain_deadline = http_now_ms() + w->cfg->limits.drain_timeout_ms;
    if (w->id == 0)
        funnel_sync_flush(); /* the last second's counts, while the loop drains */
    on_drain_tick(-1, 0, w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    funnel_bind_worker(w->id);
    if (log_access_attach(w->base) != 0)
        log_warn("worker %d: access log unbuffered (out of memory)", w->id);
    if (watchdog_watch(w->wd, w->base) != 0)
        log_warn("worker %d: not watched by the watchdog (out of memory)", w->id);
    event_base_dispatch(w->base);
    watchdog_unwatch(w->wd);
    log_access_detach(); /* nothing buffered is lost on SIGTERM */
    arena_cache_trim();
    return NULL;
}

/* fds[]: the worker's listening sockets (public, TLS, admin; -1 for none). */
static int worker_init(struct server *s, struct worker *w, int id, const int fds[3], char *err,
                       size_t errsz)
{
    int fd = fds[0], tls_fd = fds[1], admin_fd = fds[2];
    w->id = id;
    w->server = s;
    w->listen_fd = fd;
    w->tls_fd = tls_fd;
    w->wd = watchdog_slot(id);
    w->cfg = config_retain(s->cfg);
    /* With the changelist, the interest changes a request makes within one
     * loop turn (read off while a handler waits on the store, a close
     * notice on, then both back) reach epoll as one net change, or none. */
    struct event_config *ec = event_config_new();
    if (ec)
        event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = ec ? event_base_new_with_config(ec) : NULL;
    if (ec)
        event_config_free(ec);
    if (!w->base) {
        snprintf(err, errsz, "cannot create an event loop");
        return -1;
    }
    w->fetch = fetch_loop_new(w->base);
    w->store = store_attach(s->store, w->base);
    w->http = http_server_new(w->base, fd, &w->cfg->limits, NULL, on_request, w);
    if (tls_fd >= 0)
        w->https = http_server_new(w->base, tls_fd, &w->cfg->limits, s->tls, on_request, w);
    if (admin_fd >= 0)
        w->admin = http_server_new(w->base, admin_fd, &w->cfg->limits, NULL, on_admin_request, w);
    if (!w->fetch || !w->store || !w->http || (tls_fd >= 0 && !w->https) ||
        (admin_fd >= 0 && !w->admin)) {
        snprintf(err, errsz, "cannot start worker %d", id);
        return -1;
    }
    w->vm = wxlua_vm_new(w, w->cfg, err, errsz);
    if (!w->vm)
        return -1;
    w->reload_ev = event_new(w->base, -1, 0, on_reload, w);
    w->stop_ev = event_new(w->base, -1, 0, on_stop, w);
    w->drain_ev = evtimer_new(w->base, on_drain_tick, w);
    return 0;
}

static void worker_free(struct worker *w)
{
    if (w->http)
        http_server_free(w->http); /* aborts what is left: may finish Lua tasks */
    if (w->https)
        http_server_free(w->https);
    if (w->admin)
        http_server_free(w->admin);
    wxlua_vm_retire(w->vm);
    if (w->store)
        store_detach(w->store);
    if (w->fetch)
        fetch_loop_free(w->fetch);
    if (w->reload_ev)
        event_free(w->reload_ev);
    if (w->stop_ev)
        event_free(w->stop_ev);
    if (w->drain_ev)
        event_free(w->drain_ev);
    config_release(__atomic_exchange_n(&w->pending, NULL, __ATOMIC_ACQ_REL));
    config_release(w->cfg);
    if (w->base)
        event_base_free(w->base);
}

/* Main thread side of SIGHUP. */
static void reload(struct server *s)
{
    char err[4096];
    if (!s->config_path) {
        log_info("SIGHUP: no config file to reload");
        return;
    }
    log_info("SIGHUP: reloading %s", s->config_path);
    struct watchdog_slot *main_slot = watchdog_slot(-1);
    watchdog_busy(main_slot, "SIGHUP: loading the config and its scripts");
    struct config *fresh = config_load(s->config_path, err, sizeof(err));
    if (fresh && wxlua_check_scripts(fresh, err, sizeof(err)) != 0) {
        config_release(fresh);
        fresh = NULL;
    }
    watchdog_idle(main_slot);
    if (!fresh) {
        log_error("reload refused, the old version keeps serving: %s", err);
        return;
    }
    const char *admin = fresh->admin_listen ? fresh->admin_listen : "";
    if (strcmp(fresh->listen, s->cfg->listen) != 0 || fresh->workers != s->cfg->workers ||
        strcmp(fresh->store, s->cfg->store) != 0 ||
        strcmp(admin, s->cfg->admin_listen ? s->cfg->admin_listen : "") != 0)
        log_warn("reload: listen, admin_listen, workers and store take effect only after a "
                 "restart");
    apply_secrets(fresh);
    apply_log_level(fresh);
    funnel_set_enabled(!fresh->dashboard_counters_off);
    if (fresh->lua_trusted)
        log_warn("%s", config_trusted_warning);
    for (int i = 0; i < s->n_workers; i++) {
        struct worker *w = &s->workers[i];
        config_release(__atomic_exchange_n(&w->pending, config_retain(fresh), __ATOMIC_ACQ_REL));
        event_active(w->reload_ev, 0, 0);
    }
    config_release(s->cfg);
    s->cfg = fresh;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *s = arg;
    if (sig == SIGHUP) {
        service_notify_reloading();
        reload(s);
        service_notify_ready(s->n_workers);
        return;
    }
    service_notify_stopping();
    log_info("%s: draining and stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    /* However the workers fare, the process ends within the drain timeout
     * and a second. */
    watchdog_deadline(s->cfg->limits.drain_timeout_ms + 800);
    for (int i = 0; i < s->n_workers; i++)
        event_active(s->workers[i].stop_ev, 0, 0);
    event_base_loopexit(s->base, NULL);
}

/* Each connection is a descriptor: lift the soft limit to the hard one (as
 * nginx's worker_rlimit_nofile), and say so when the connection caps can
 * still not be met. */
static void raise_fd_limit(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    unsigned long long want = (unsigned long long)cfg->limits.max_connections *
                                  (unsigned long long)cfg->workers * (cfg->tls_listen ? 2 : 1) +
                              256;
    if (rl.rlim_cur != RLIM_INFINITY && want > rl.rlim_cur)
        log_warn("limits.max_connections x workers needs about %llu descriptors; the limit is "
                 "%llu (raise LimitNOFILE / ulimit -n)",
                 want, (unsigned long long)rl.rlim_cur);
}

int server_run(struct config *cfg, const char *config_path, server_ready_fn ready, void *arg)
{
    struct server s = {.cfg = cfg, .config_path = config_path ? strdup(config_path) : NULL};
    char err[2048];
    int rc = 1;
    int started = 0;

    raise_fd_limit(cfg);
    evthread_use_pthreads();
    fetch_global_init();
    signal(SIGPIPE, SIG_IGN);
    apply_secrets(cfg);
    apply_log_level(cfg);
    funnel_set_enabled(!cfg->dashboard_counters_off);
    metrics_describe_catalog();
    if (cfg->lua_trusted)
        log_warn("%s", config_trusted_warning);

    if (cfg->tls_listen) {
        s.tls = tls_server_ctx(cfg->tls_cert, cfg->tls_key, err, sizeof(err));
        if (!s.tls) {
            log_error("tls: %s", err);
            goto out;
        }
    }
    const char *store_err = NULL;
    s.store = store_open(cfg->store, &store_err);
    if (!s.store) {
        /* Not the url: it may hold the Redis password. */
        log_error("store: %s", store_err ? store_err : "cannot open");
        goto out;
    }

    /* Block signals in workers and the watchdog: the main loop alone
     * handles them. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    if (watchdog_start(cfg->workers, cfg->limits.watchdog_ms) != 0) {
        log_error("cannot start the watchdog thread");
        goto stop;
    }
    watchdog_busy(watchdog_slot(-1), "starting: loading the scripts");

    s.n_workers = cfg->workers;
    s.workers = calloc((size_t)s.n_workers, sizeof(*s.workers));
    int port = cfg->listen_port, tls_port = cfg->tls_port, admin_port = cfg->admin_port;
    for (int i = 0; i < s.n_workers; i++) {
        /* The first worker's sockets check that no other process serves the
         * address; the others join it. */
        int fds[3] = {-1, -1, -1}; /* public, TLS, admin */
        fds[0] = http_listen_shared(cfg->listen_host, port, i > 0, &port, err, sizeof(err));
        if (fds[0] >= 0 && cfg->tls_listen)
            fds[1] =
                http_listen_shared(cfg->tls_host, tls_port, i > 0, &tls_port, err, sizeof(err));
        if (fds[0] >= 0 && (!cfg->tls_listen || fds[1] >= 0) && cfg->admin_listen)
            fds[2] = http_listen_shared(cfg->admin_host, admin_port, i > 0, &admin_port, err,
                                        sizeof(err));
        if (fds[0] < 0 || (cfg->tls_listen && fds[1] < 0) || (cfg->admin_listen && fds[2] < 0) ||
            worker_init(&s, &s.workers[i], i, fds, err, sizeof(err)) != 0) {
            log_error("%s", err);
            if (fds[0] >= 0 && !s.workers[i].http)
                close(fds[0]);
            if (fds[1] >= 0 && !s.workers[i].https)
                close(fds[1]);
            if (fds[2] >= 0 && !s.workers[i].admin)
                close(fds[2]);
            goto stop;
        }
    }
    s.port = port;
    s.tls_port = tls_port;
    s.admin_port = admin_port;
    if (funnel_sync_start(s.workers[0].store, s.workers[0].base, port) != 0)
        log_warn("campaign funnel: counts are not folded into minutes (out of memory)");
    for (int i = 0; i < s.n_workers; i++) {
        if (pthread_create(&s.workers[i].thread, NULL, worker_main, &s.workers[i]) != 0) {
            log_error("cannot start worker thread %d", i);
            goto stop;
        }
        started++;
    }
    watchdog_idle(watchdog_slot(-1));
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    s.base = event_base_new();
    struct event *sigs[3];
    int signos[3] = {SIGHUP, SIGTERM, SIGINT};
    for (int i = 0; i < 3; i++) {
        sigs[i] = evsignal_new(s.base, signos[i], on_signal, &s);
        event_add(sigs[i], NULL);
    }
    char https[300] = "", admin[300] = "";
    if (cfg->tls_listen)
        snprintf(https, sizeof(https), " (https %s:%d)", cfg->tls_host, tls_port);
    if (cfg->admin_listen)
        snprintf(admin, sizeof(admin), " (admin %s:%d)", cfg->admin_host, admin_port);
    log_info("wxgate listening on %s:%d%s%s with %d workers", cfg->listen_host, port, https, admin,
             s.n_workers);
    if (ready)
        ready(&s, arg);
    service_notify_ready(s.n_workers);
    event_base_dispatch(s.base);
    for (int i = 0; i < 3; i++)
        event_free(sigs[i]);
    rc = 0;

stop:
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        for (int i = 0; i < started; i++)
            event_active(s.workers[i].stop_ev, 0, 0);
    }
    for (int i = 0; i < started; i++)
        pthread_join(s.workers[i].thread, NULL);
    watchdog_stop();
    funnel_sync_stop();
    for (int i = 0; i < s.n_workers; i++)
        worker_free(&s.workers[i]);
    arena_cache_trim(); /* blocks of requests that worker_free ended */
    free(s.workers);
    if (s.base)
        event_base_free(s.base);
    if (rc == 0)
        log_info("stopped");
out:
    if (s.store)
        store_close(s.store);
    if (s.tls)
        SSL_CTX_free(s.tls);
    config_release(s.cfg);
    free(s.config_path);
    return rc;
}
