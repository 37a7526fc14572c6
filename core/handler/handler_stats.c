/* GET /api/campaigns/stats?campaign=NAME&window=15m|1h|1d|all: the campaign
 * funnel (funnel.h) of the whole fleet as JSON, for scripts and chat bots.
 * The bearer API key on the public listener; none on the admin listener. */
#include "config.h"
#include "funnel.h"
#include "funnel_sync.h"
#include "http.h"
#include "server.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stats_req {
    struct http_req *r;
    struct config *cfg; /* retained: the configured campaigns are listed */
    const char *window, *campaign;
};

static void reply_json(struct http_req *r, int status, const char *json)
{
    http_req_add_header(r, "Cache-Control", "no-store");
    http_reply(r, status, "application/json; charset=utf-8", json, strlen(json));
}

static void reply_error(struct http_req *r, int status, const char *error, const char *message)
{
    json_t *o = json_pack("{s:s,s:s,s:s}", "error", error, "message", message, "request_id",
                          http_req_id(r));
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    reply_json(r, status, s ? s : "{\"error\":\"internal\"}");
    free(s);
    json_decref(o);
}

const char **stats_campaign_names(const struct config *cfg, size_t *n)
{
    const char **v = calloc(cfg->n_campaigns + 1, sizeof(char *));
    for (size_t i = 0; v && i < cfg->n_campaigns; i++)
        v[i] = cfg->campaigns[i].name;
    *n = v ? cfg->n_campaigns : 0;
    return v;
}

static void on_view(struct funnel_view *v, void *arg)
{
    struct stats_req *s = arg;
    size_t n = 0;
    const char **names = stats_campaign_names(s->cfg, &n);
    json_t *rep = v ? funnel_view_report(v, s->window, s->campaign, names, n) : NULL;
    json_t *list = json_object_get(rep, "campaigns");
    if (!rep) {
        reply_error(s->r, 503, "unavailable", "out of memory, try again");
    } else if (s->campaign && json_array_size(list) == 0) {
        reply_error(s->r, 404, "no_such_campaign", "no campaign of that name");
    } else {
        char *body = json_dumps(rep, JSON_COMPACT);
        reply_json(s->r, 200, body ? body : "{}");
        free(body);
    }
    json_decref(rep);
    free((void *)names);
    funnel_view_free(v);
    config_release(s->cfg);
    free(s);
}

static void serve_stats(struct worker *w, struct http_req *r)
{
    const char *window = http_req_arg(r, "window");
    const char *campaign = http_req_arg(r, "campaign");
    if (!window || !*window)
        window = "1h";
    if (funnel_window_minutes(window) < 0) {
        reply_error(r, 400, "bad_request", "window must be 15m, 1h, 1d or all");
        return;
    }
    struct stats_req *s = calloc(1, sizeof(*s));
    if (!s) {
        reply_error(r, 503, "unavailable", "out of memory, try again");
        return;
    }
    /* the request's arguments live until it is answered */
    *s = (struct stats_req){.r = r,
                            .cfg = config_retain(w->cfg),
                            .window = window,
                            .campaign = campaign && *campaign ? campaign : NULL};
    funnel_collect(w->store, on_view, s);
}

void handle_campaign_stats(struct worker *w, struct http_req *r)
{
    if (api_authorized(w, r))
        serve_stats(w, r);
}

void handle_campaign_stats_admin(struct worker *w, struct http_req *r) { serve_stats(w, r); }
