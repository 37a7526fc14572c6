/* GET /jssdk/config?app=..&url=..: the wx.config parameters for a page,
 * {appId, timestamp, nonceStr, signature}. The URL must be on the allow-list
 * of one of the app's campaigns; CORS answers only those origins. */
#include "config.h"
#include "http.h"
#include "jssdk.h"
#include "login.h"
#include "server.h"
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct jssdk_req {
    struct http_req *r;
    struct config *cfg;
    const struct config_app *app;
    char *url;
};

static void reply_json(struct http_req *r, int status, const char *body)
{
    http_req_add_header(r, "Cache-Control", "no-store");
    http_reply(r, status, "application/json; charset=utf-8", body, strlen(body));
}

static void on_ticket(const char *ticket, const char *err, void *arg)
{
    struct jssdk_req *j = arg;
    struct jssdk_sig sig;
    if (ticket && jssdk_sign(ticket, j->url, &sig) != 0) {
        ticket = NULL;
        err = "no random nonce";
    }
    if (!ticket) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"error\":\"upstream\",\"message\":\"no jsapi ticket: %s\","
                 "\"request_id\":\"%s\"}",
                 err ? err : "error", http_req_id(j->r));
        reply_json(j->r, 502, body);
    } else {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"appId\":\"%s\",\"timestamp\":%s,\"nonceStr\":\"%s\",\"signature\":\"%s\"}",
                 j->app->appid, sig.timestamp, sig.nonce, sig.signature);
        reply_json(j->r, 200, body);
    }
    config_release(j->cfg);
    free(j->url);
    free(j);
}

/* The campaign of app whose allow-list takes url, or NULL. */
static const struct config_campaign *campaign_for(const struct config *cfg,
                                                  const struct config_app *app, const char *url)
{
    for (size_t i = 0; i < cfg->n_campaigns; i++)
        if (cfg->campaigns[i].app == app && login_return_allowed(&cfg->campaigns[i], url))
            return &cfg->campaigns[i];
    return NULL;
}

/* Access-Control-Allow-Origin for an Origin (scheme://host[:port]) that one
 * of app's campaigns allows, compared parsed, as the allow-list is. */
static void add_cors(struct http_req *r, const struct config *cfg, const struct config_app *app)
{
    const char *origin = http_req_header(r, "Origin");
    struct url_http o;
    const char *why;
    if (!origin || strlen(origin) > 300 || strpbrk(origin, "?#@\\") ||
        url_parse_http(origin, &o, &why) != 0 || strcmp(o.path, "/") != 0)
        return;
    http_req_add_header(r, "Vary", "Origin");
    for (size_t i = 0; i < cfg->n_campaigns; i++) {
        const struct config_campaign *c = &cfg->campaigns[i];
        if (c->app != app)
            continue;
        for (size_t k = 0; k < c->n_allow; k++) {
            const struct url_http *a = &c->allow_url[k];
            if (a->https == o.https && a->port == o.port && strcmp(a->host, o.host) == 0) {
                http_req_add_header(r, "Access-Control-Allow-Origin", origin);
                return;
            }
        }
    }
}

void handle_jssdk(struct worker *w, struct http_req *r)
{
    struct config *cfg = w->cfg;
    const char *name = http_req_arg(r, "app");
    const char *url = http_req_arg(r, "url");
    const struct config_app *app = name ? config_find_app(cfg, name) : NULL;
    if (!app) {
        reply_json(r, 404, "{\"error\":\"unknown_app\",\"message\":\"app=NAME_OR_APPID\"}");
        return;
    }
    add_cors(r, cfg, app);
    if (!url || !campaign_for(cfg, app, url)) {
        reply_json(r, 400,
                   "{\"error\":\"bad_url\",\"message\":\"url must be a page on the "
                   "allow-list of one of this app's campaigns\"}");
        return;
    }
    struct jssdk_req *j = calloc(1, sizeof(*j));
    if (!j) {
        reply_json(r, 503, "{\"error\":\"busy\"}");
        return;
    }
    j->r = r;
    j->cfg = config_retain(cfg);
    j->app = app;
    j->url = strdup(url);
    jssdk_ticket(w, app, on_ticket, j);
}
