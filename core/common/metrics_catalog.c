/* The catalogue of wxgate's metrics: every family's type and help text, as
 * /metrics shows them. A new metric is described here once. */
#include "metrics.h"

void metrics_describe_catalog(void)
{
    static const char *const m[][3] = {
        {"wxgate_requests_total", "counter", "HTTP requests answered, by status class."},
        {"wxgate_logins_started_total", "counter", "Redirects to WeChat, by campaign."},
        {"wxgate_logins_completed_total", "counter", "Logins that reached their final URL."},
        {"wxgate_logins_denied_total", "counter", "Users who refused the authorization."},
        {"wxgate_tickets_redeemed_total", "counter",
         "Login tickets redeemed through POST /api/ticket, by campaign."},
        {"wxgate_logins_failed_total", "counter", "Failed logins, by campaign and error."},
        {"wxgate_logins_restarted_total", "counter",
         "Fresh authorizations after a used or "
         "expired state or code."},
        {"wxgate_state_cookie_absent_total", "counter",
         "Callbacks without the state cookie "
         "(accepted)."},
        {"wxgate_upstream_seconds", "histogram", "WeChat API call latency, by endpoint."},
        {"wxgate_upstream_connections_opened_total", "counter",
         "New TCP connections to WeChat (and wx.http hosts); the rest reuse kept-alive ones."},
        {"wxgate_upstream_in_flight", "gauge",
         "Upstream calls (WeChat, wx.http) in progress, all workers."},
        {"wxgate_upstream_errors_total", "counter",
         "WeChat API failures, by endpoint and "
         "error."},
        {"wxgate_store_errors_total", "counter", "Store (Redis) calls that failed, by cause."},
        {"wxgate_store_connections", "gauge",
         "Worker connections ready to each Redis node (node=\"host:port\")."},
        {"wxgate_store_failovers_total", "counter",
         "Redis primary changes followed: a worker moving to a new Sentinel primary, or a "
         "cluster slot map with a newly promoted primary."},
        {"wxgate_store_redirects_total", "counter",
         "Redis Cluster redirects followed, by kind (moved, ask)."},
        {"wxgate_auth_rate_limited_total", "counter",
         "/auth requests refused by limits.auth_per_minute (429)."},
        {"wxgate_mp_login_rate_limited_total", "counter",
         "POST /api/mp/login refused by limits.mp_login_per_minute (429)."},
        {"wxgate_store_evictions_total", "counter",
         "Login states nobody called back for, evicted (oldest first) to make room."},
        {"wxgate_lua_errors_total", "counter", "Lua errors, by kind (error, cpu, memory)."},
        {"wxgate_lua_runs_total", "counter",
         "Runs of Lua code: resumes of a request's "
         "coroutine (hooks and routes)."},
        {"wxgate_basic_token_refreshes_total", "counter", "cgi-bin/token fetches, by app."},
        {"wxgate_basic_token_quota_left", "gauge", "cgi-bin/token calls left today, by app."},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        metrics_describe(m[i][0], m[i][1], m[i][2]);
}
