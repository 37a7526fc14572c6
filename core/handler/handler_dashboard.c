/* GET /dashboard[?window=15m|1h|1d|all][&campaign=NAME]: the campaign
 * funnel (funnel.h) of the whole fleet as one self-contained page for the
 * people who run campaigns: no scripts, fonts or images from anywhere (the
 * charts are inline SVG drawn here), a meta refresh every 5 s, Chinese and
 * English side by side, readable on a phone, in print and with colour
 * blindness (Okabe-Ito colours, and lines told apart by dashes and labels).
 * Counts only: nothing about any user.
 *
 * On the admin listener it is open; on the public one only with
 * dashboard.password (HTTP Basic, any user name), and 404 without. With a
 * password set, the admin listener asks for it too. */
#include "config.h"
#include "crypto.h"
#include "funnel.h"
#include "funnel_sync.h"
#include "http.h"
#include "page.h"
#include "server.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define REFRESH_S "5"

struct dash_req {
    struct http_req *r;
    struct config *cfg;
    const char *window, *campaign;
};

/* ---- writing HTML ---- */

static void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* Percent-encodes s for a query value, then HTML-escapes nothing more is
 * needed: the result has no characters HTML cares about. */
static void qenc(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~", *p))
            fputc(*p, f);
        else
            fprintf(f, "%%%02X", *p);
    }
}

static long long num(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

static const char *const window_names[] = {"15m", "1h", "1d", "all"};
static const char *const window_labels[] = {"15 分钟 · 15 min", "1 小时 · 1 hour", "1 天 · 1 day",
                                            "全部 · since start"};

static const char style[] =
    "body{font-family:system-ui,-apple-system,\"PingFang SC\",\"Microsoft YaHei\",sans-serif;"
    "margin:0;padding:12px;color:#111;background:#fff;line-height:1.4}"
    "h1{font-size:1.3em;margin:0 0 8px}h2{font-size:1.1em;margin:18px 0 6px}"
    "nav a{display:inline-block;margin:2px 6px 2px 0;padding:4px 8px;border:1px solid #555;"
    "border-radius:4px;color:#111;text-decoration:none}"
    "nav a.on{background:#111;color:#fff}"
    ".scroll{overflow-x:auto}table{border-collapse:collapse;min-width:100%}"
    "th,td{border-bottom:1px solid #bbb;padding:4px 6px;text-align:right;white-space:nowrap}"
    "th:first-child,td:first-child{text-align:left}th{font-weight:600;font-size:.85em}"
    "small,.muted{color:#444}a{color:#0b4f8a}"
    ".legend span{margin-right:12px}svg{max-width:100%;height:auto}"
    ".bar{fill:#0072B2}.exit{fill:#D55E00}"
    "@media (max-width:600px){body{padding:6px}th,td{padding:3px 4px;font-size:.85em}"
    "table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;min-width:0}"
    "table.cards tr:first-child{display:none}"
    "table.cards tr{border:1px solid #888;border-radius:6px;margin:8px 0;padding:4px 8px}"
    "table.cards td{display:flex;justify-content:space-between;border:0;padding:2px 0}"
    "table.cards td.name{font-size:1.05em;font-weight:600}"
    "table.cards td[data-label]::before{content:attr(data-label);color:#444;"
    "margin-right:12px}}"
    "@media print{nav,.noprint{display:none}a{color:#111;text-decoration:none}}";

static void head(FILE *f, const char *title_suffix)
{
    fputs("<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
          "<meta http-equiv=\"refresh\" content=\"" REFRESH_S "\">"
          "<meta name=\"robots\" content=\"noindex\"><title>",
          f);
    esc(f, title_suffix);
    fprintf(f, "活动看板 · Campaign dashboard</title><style>%s</style></head><body>", style);
}

static void nav(FILE *f, const char *window, const char *campaign)
{
    fputs("<nav aria-label=\"window\">", f);
    for (size_t i = 0; i < 4; i++) {
        fprintf(f, "<a%s href=\"?window=%s", strcmp(window, window_names[i]) ? "" : " class=\"on\"",
                window_names[i]);
        if (campaign) {
            fputs("&amp;campaign=", f);
            qenc(f, campaign);
        }
        fprintf(f, "\">%s</a>", window_labels[i]);
    }
    fputs("</nav>", f);
}

/* The time chart: completed (blue, solid, dots) and failed (vermillion,
 * dashed) per bin, with the largest value on the axis. */
static void chart(FILE *f, json_t *series)
{
    json_t *done = json_object_get(series, "completed"), *fail = json_object_get(series, "failed");
    size_t n = json_array_size(done);
    long long max = 1, bin = num(series, "bin_seconds");
    for (size_t i = 0; i < n; i++) {
        long long a = json_integer_value(json_array_get(done, i));
        long long b = json_integer_value(json_array_get(fail, i));
        max = a > max ? a : max;
        max = b > max ? b : max;
    }
    const int W = 600, H = 160, L = 40, B = 20;
    fprintf(f,
            "<svg viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" "
            "aria-label=\"completed and failed logins per %lld s\">"
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#111\"/>"
            "<line x1=\"%d\" y1=\"4\" x2=\"%d\" y2=\"%d\" stroke=\"#111\"/>"
            "<text x=\"%d\" y=\"12\" font-size=\"11\" text-anchor=\"end\">%lld</text>"
            "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">0</text>",
            W, H, W, H, bin, L, H - B, W, H - B, L, L, H - B, L - 4, max, L - 4, H - B);
    for (int s = 0; s < 2 && n; s++) {
        json_t *a = s ? fail : done;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
                s ? "#D55E00" : "#0072B2", s ? " stroke-dasharray=\"6 4\"" : "");
        for (size_t i = 0; i < n; i++) {
            double x = L + (n > 1 ? (double)i * (W - L - 4) / (double)(n - 1) : 0);
            double y = (H - B) -
                       (double)json_integer_value(json_array_get(a, i)) * (H - B - 8) / (double)max;
            fprintf(f, "%.1f,%.1f ", x, y);
        }
        fputs("\"/>", f);
    }
    fprintf(f,
            "<text x=\"%d\" y=\"%d\" font-size=\"11\">%s</text>"
            "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%s</text></svg>",
            L, H - 4, "← 较早 · earlier", W - 4, H - 4, "现在 · now →");
    fprintf(f,
            "<p class=\"legend\"><span><svg width=\"30\" height=\"10\" aria-hidden=\"true\">"
            "<line x1=\"0\" y1=\"5\" x2=\"30\" y2=\"5\" stroke=\"#0072B2\" stroke-width=\"2\"/>"
            "</svg> 完成 · completed</span><span><svg width=\"30\" height=\"10\" "
            "aria-hidden=\"true\"><line x1=\"0\" y1=\"5\" x2=\"30\" y2=\"5\" stroke=\"#D55E00\" "
            "stroke-width=\"2\" stroke-dasharray=\"6 4\"/></svg> 失败 · failed</span>"
            "<small>每格 · per point: %lld s</small></p>",
            bin);
}

static const struct {
    const char *key, *label;
} stages[] = {
    {"started", "发起登录 · started /auth"},
    {"sent_to_wechat", "跳转微信 · sent to WeChat"},
    {"returned_with_code", "授权返回 · came back with a code"},
    {"completed", "完成 · completed"},
    {"redeemed", "票据兑换 · ticket redeemed"},
};

static const struct {
    const char *key, *label;
} exits[] = {
    {"declined", "拒绝授权 · declined"},
    {"state_expired", "链接过期或重复 · state expired or reused"},
    {"wechat_errors", "微信错误 · WeChat errors"},
    {"timeouts", "超时 · timeouts"},
    {"hook_errors", "脚本错误（已按默认处理）· hook errors (default used)"},
    {"refused", "脚本拒绝 · refused by the hook"},
    {"other_errors", "其他错误 · other errors"},
    {"restarted", "自动重新授权 · restarted once"},
};

/* The funnel as horizontal bars, each with its count written out. */
static void funnel_bars(FILE *f, json_t *c)
{
    long long max = num(c, "started");
    for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++)
        max = num(c, stages[i].key) > max ? num(c, stages[i].key) : max;
    if (max < 1)
        max = 1;
    fputs("<div class=\"scroll\"><table><tr><th>阶段 · stage</th><th>人次 · count</th>"
          "<th style=\"width:50%\"></th></tr>",
          f);
    for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++) {
        long long v = num(c, stages[i].key);
        fprintf(f,
                "<tr><td>%s</td><td data-k=\"%s\">%lld</td><td><svg viewBox=\"0 0 100 10\" "
                "width=\"100%%\" height=\"12\" preserveAspectRatio=\"none\" aria-hidden=\"true\">"
                "<rect class=\"bar\" width=\"%.1f\" height=\"10\"/></svg></td></tr>",
                stages[i].label, stages[i].key, v, 100.0 * (double)v / (double)max);
    }
    fputs("</table></div><h2>流失 · where they left</h2><div class=\"scroll\"><table>", f);
    for (size_t i = 0; i < sizeof(exits) / sizeof(exits[0]); i++) {
        fprintf(f, "<tr><td>%s</td><td data-k=\"%s\">%lld</td></tr>", exits[i].label, exits[i].key,
                num(c, exits[i].key));
        if (strcmp(exits[i].key, "wechat_errors") != 0)
            continue;
        const char *code;
        json_t *v;
        json_object_foreach(json_object_get(c, "wechat_errors_by_errcode"), code, v)
        {
            fputs("<tr><td>&nbsp;&nbsp;&nbsp;&nbsp;errcode ", f);
            esc(f, code);
            fputs("</td><td data-k=\"errcode-", f);
            esc(f, code);
            fprintf(f, "\">%lld</td></tr>", (long long)json_integer_value(v));
        }
    }
    fputs("</table></div>", f);
}

static void seconds(FILE *f, json_t *v)
{
    if (json_is_integer(v))
        fprintf(f, "≤%lld s", (long long)json_integer_value(v));
    else
        fputs("–", f);
}

static void detail(FILE *f, json_t *c, const char *window)
{
    const char *name = json_string_value(json_object_get(c, "campaign"));
    fputs("<p class=\"noprint\"><a href=\"?window=", f);
    esc(f, window);
    fputs("\">← 全部活动 · all campaigns</a></p><h1>", f);
    esc(f, name);
    fputs("</h1>", f);
    nav(f, window, name);
    fprintf(f, "<div data-campaign=\"");
    esc(f, name);
    fputs("\"><h2>漏斗 · funnel</h2>", f);
    funnel_bars(f, c);
    fputs("<h2>每分钟登录 · logins over time</h2>", f);
    chart(f, json_object_get(c, "series"));
    fputs("<h2>耗时与用户 · time and users</h2><table><tr><td>中位数 · median /auth → done</td>"
          "<td data-k=\"median_seconds\">",
          f);
    seconds(f, json_object_get(c, "median_seconds"));
    fputs("</td></tr><tr><td>p99 /auth → done</td><td data-k=\"p99_seconds\">", f);
    seconds(f, json_object_get(c, "p99_seconds"));
    fprintf(f,
            "</td></tr><tr><td>快照页用户 · snapshot users (is_snapshotuser)</td>"
            "<td data-k=\"snapshot_users\">%lld</td></tr></table>",
            num(c, "snapshot_users"));
    fputs("<h2>返回页面 · top return pages <small>(全部 · since start)</small></h2>"
          "<div class=\"scroll\"><table>",
          f);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(c, "top_return_pages"), i, p)
    {
        fputs("<tr><td>", f);
        esc(f, json_string_value(json_object_get(p, "page")));
        fprintf(f, "</td><td>%lld</td></tr>", num(p, "count"));
    }
    if (i == 0)
        fputs("<tr><td class=\"muted\">– 暂无 · none yet</td><td></td></tr>", f);
    fputs("</table></div></div>", f);
}

static void overview(FILE *f, json_t *list, const char *window)
{
    fputs("<h1>活动看板 · Campaign dashboard</h1>", f);
    nav(f, window, NULL);
    /* the column heads; on a phone each row becomes a card that names its
     * numbers (data-label), instead of a table to scroll sideways */
    static const struct {
        const char *key, *label;
    } cols[] = {
        {"started", "发起 · started"},
        {"sent_to_wechat", "跳转微信 · sent"},
        {"returned_with_code", "授权返回 · code"},
        {"completed", "完成 · completed"},
        {"redeemed", "兑换 · redeemed"},
        {"declined", "拒绝 · declined"},
        {"failed", "失败 · failed"},
    };
    fputs("<div class=\"scroll\"><table class=\"cards\"><tr><th>活动 · campaign</th>", f);
    for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]); k++)
        fprintf(f, "<th>%s</th>", cols[k].label);
    fputs("<th>完成率 · rate</th><th>中位数 · median</th></tr>", f);
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "campaign"));
        fputs("<tr data-campaign=\"", f);
        esc(f, name);
        fputs("\"><td class=\"name\"><a href=\"?campaign=", f);
        qenc(f, name);
        fprintf(f, "&amp;window=%s\">", window);
        esc(f, name);
        fputs("</a></td>", f);
        for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]); k++)
            fprintf(f, "<td data-label=\"%s\" data-k=\"%s\">%lld</td>", cols[k].label, cols[k].key,
                    num(c, cols[k].key));
        json_t *rate = json_object_get(c, "completion_rate");
        if (json_is_number(rate))
            fprintf(f, "<td data-label=\"完成率 · rate\">%.0f%%</td>",
                    100.0 * json_number_value(rate));
        else
            fputs("<td data-label=\"完成率 · rate\">–</td>", f);
        fputs("<td data-label=\"中位数 · median\">", f);
        seconds(f, json_object_get(c, "median_seconds"));
        fputs("</td></tr>", f);
    }
    if (i == 0)
        fputs("<tr><td class=\"muted\" colspan=\"10\">– 暂无活动 · no campaigns yet</td></tr>", f);
    fputs("</table></div><p class=\"muted\">点击活动查看详情与图表 · open a campaign for its "
          "chart and exits.</p>",
          f);
}

static void on_view(struct funnel_view *v, void *arg)
{
    struct dash_req *d = arg;
    size_t n = 0;
    const char **names = stats_campaign_names(d->cfg, &n);
    json_t *rep = v ? funnel_view_report(v, d->window, d->campaign, names, n) : NULL;
    json_t *list = json_object_get(rep, "campaigns");
    char *body = NULL;
    size_t len = 0;
    FILE *f = rep ? open_memstream(&body, &len) : NULL;
    if (!f) {
        page_busy(d->r);
    } else if (d->campaign && json_array_size(list) == 0) {
        fclose(f);
        page_error(d->r, 404, "活动不存在", "There is no such campaign.", NULL);
    } else {
        head(f, d->campaign ? d->campaign : "");
        if (d->campaign)
            detail(f, json_array_get(list, 0), d->window);
        else
            overview(f, list, d->window);
        time_t now = (time_t)num(rep, "generated_at");
        struct tm tm;
        char when[40];
        gmtime_r(&now, &tm);
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
        fprintf(f,
                "<p class=\"muted\"><small>更新于 · updated %s · 实例 · instances: <span "
                "data-k=\"instances\">%lld</span> · 每 " REFRESH_S
                " 秒刷新 · refreshes every " REFRESH_S " s · 仅计数，不含用户数据 · counts "
                "only, no user data</small></p></body></html>",
                when, num(rep, "instances"));
        fclose(f);
        http_req_add_header(d->r, "Cache-Control", "no-store");
        http_req_add_header(d->r, "X-Frame-Options", "DENY");
        http_req_add_header(d->r, "Content-Security-Policy",
                            "default-src 'none'; style-src 'unsafe-inline'; img-src data:");
        http_reply(d->r, 200, "text/html; charset=utf-8", body, len);
    }
    free(body);
    json_decref(rep);
    free((void *)names);
    funnel_view_free(v);
    config_release(d->cfg);
    free(d);
}

/* HTTP Basic with dashboard.password (any user name), in constant time. */
static int password_ok(const struct config *cfg, struct http_req *r)
{
    const char *h = http_req_header(r, "Authorization");
    if (!h || strncasecmp(h, "Basic ", 6) != 0)
        return 0;
    char b64[512];
    size_t n = strlen(h + 6);
    if (n >= sizeof(b64))
        return 0;
    for (size_t i = 0; i <= n; i++) /* base64 → base64url */
        b64[i] = h[6 + i] == '+' ? '-' : h[6 + i] == '/' ? '_' : h[6 + i];
    unsigned char raw[400];
    size_t rn = 0;
    if (crypto_base64url_decode(b64, n, raw, &rn) != 0 || rn >= sizeof(raw))
        return 0;
    raw[rn] = '\0';
    const char *colon = memchr(raw, ':', rn);
    if (!colon)
        return 0;
    const char *pw = colon + 1;
    size_t pn = rn - (size_t)(pw - (const char *)raw);
    return crypto_equal(pw, pn, cfg->dashboard_password, strlen(cfg->dashboard_password));
}

static void serve_dashboard(struct worker *w, struct http_req *r)
{
    const struct config *cfg = w->cfg;
    if (cfg->dashboard_password && !password_ok(cfg, r)) {
        http_req_add_header(r, "WWW-Authenticate",
                            "Basic realm=\"wxgate dashboard\", "
                            "charset=\"UTF-8\"");
        page_error(r, 401, "需要密码", "The dashboard needs its password.", NULL);
        return;
    }
    const char *window = http_req_arg(r, "window");
    const char *campaign = http_req_arg(r, "campaign");
    if (!window || !*window)
        window = "1h";
    if (funnel_window_minutes(window) < 0) {
        page_error(r, 400, "时间范围无效", "The window must be 15m, 1h, 1d or all.", "?window=1h");
        return;
    }
    struct dash_req *d = calloc(1, sizeof(*d));
    if (!d) {
        page_busy(r);
        return;
    }
    *d = (struct dash_req){.r = r,
                           .cfg = config_retain(w->cfg),
                           .window = window,
                           .campaign = campaign && *campaign ? campaign : NULL};
    funnel_collect(w->store, on_view, d);
}

void handle_dashboard(struct worker *w, struct http_req *r)
{
    if (!w->cfg->dashboard_password) {
        page_error(r, 404, "页面不存在", "Page not found.", NULL);
        return;
    }
    serve_dashboard(w, r);
}

void handle_dashboard_admin(struct worker *w, struct http_req *r) { serve_dashboard(w, r); }
