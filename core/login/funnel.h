/* The campaign funnel: how many logins started, reached WeChat, came back,
 * completed and were redeemed, and where the others left, per campaign and
 * per minute (the last day) plus since the counters began.
 *
 * Noting an event on the login path is one relaxed atomic add into the
 * calling worker's own cell (funnel_bind_worker); funnel_merge folds every
 * cell into the process's aggregate, which the dashboard reads. Rare events
 * (WeChat errors with their errcode, completions with their return page)
 * take the aggregate's lock directly. The aggregate is process-wide: a
 * config reload keeps it. funnel_sync.c shares it through the store. */
#ifndef WX_FUNNEL_H
#define WX_FUNNEL_H
#include <stddef.h>

enum funnel_event {
    FUNNEL_STARTED,            /* /auth with a known campaign and an allowed return URL */
    FUNNEL_SENT,               /* redirected to WeChat's authorize page */
    FUNNEL_CODE,               /* came back with a code (the callback that owns it) */
    FUNNEL_COMPLETED_TICKET,   /* final redirect with a ticket */
    FUNNEL_COMPLETED_REDIRECT, /* final redirect without one (hook's choice, snapshot) */
    FUNNEL_REDEEMED,           /* POST /api/ticket gave the user record */
    FUNNEL_DECLINED,           /* the user refused the authorization */
    FUNNEL_RESTARTED,          /* a used or expired state sent back to WeChat once */
    FUNNEL_STATE_EXPIRED,      /* failed: the state expired or was reused */
    FUNNEL_WECHAT_ERROR,       /* failed: WeChat answered an error (by errcode) */
    FUNNEL_TIMEOUT,            /* failed: WeChat did not answer (timeout, network) */
    FUNNEL_HOOK_ERROR,         /* a login or denied hook raised an error: the default was used */
    FUNNEL_REFUSED,            /* failed: the login hook refused the user */
    FUNNEL_OTHER_ERROR,        /* failed: store errors, the client left, ... */
    FUNNEL_SNAPSHOT,           /* completed logins of Moments snapshot users */
    FUNNEL_N_EVENTS
};

/* The events' names in the JSON and the store's records. */
extern const char *const funnel_event_names[FUNNEL_N_EVENTS];

/* dashboard.counters: off, noting does nothing (for comparing the cost). */
void funnel_set_enabled(int on);

/* The worker's cell for this thread (any other thread uses cell 0). */
void funnel_bind_worker(int worker_id);

/* Counts event e for campaign. */
void funnel_note(const char *campaign, enum funnel_event e);
/* A completed login: ticket or not, a snapshot user or not, the seconds
 * since its /auth, and the page it returned to (origin and path only). */
void funnel_completed(const char *campaign, int with_ticket, int snapshot, long seconds,
                      const char *return_url);
/* A failed login as /callback's error page saw it: kind ("expired",
 * "refused", "upstream"), WeChat's error (enum wechat_err, 0 for none) and
 * errcode. */
void funnel_failed(const char *campaign, const char *kind, int wechat_err, int errcode);
/* A ticket redeemed, of campaign (from the ticket's value), or "" when the
 * value did not carry it: then its user record (JSON) names it. Also counts
 * wxgate_tickets_redeemed_total, which dashboard.counters = false keeps. */
void funnel_redeemed(const char *campaign, const char *user_json, size_t len);

/* Folds every worker's cell into the aggregate; 1 when anything changed
 * since the last funnel_take_dirty. */
void funnel_merge(void);
int funnel_take_dirty(void);

/* ---- records: the aggregate as JSON, and views summed from records ---- */

struct json_t;
/* The aggregate (merged first) as a record: compact JSON, malloc'd. */
char *funnel_record(void);
/* Adds a record (as written by funnel_record, here or by another instance)
 * to the aggregate: how a restarted instance picks up its counts. */
int funnel_load_record(const char *json, size_t len);

/* A view sums the records of every instance. */
struct funnel_view;
struct funnel_view *funnel_view_new(void);
void funnel_view_free(struct funnel_view *v);
/* Adds this process's live aggregate (merged first). */
void funnel_view_add_local(struct funnel_view *v);
/* Adds a record from the store; -1 when it does not parse. */
int funnel_view_add_record(struct funnel_view *v, const char *json, size_t len);
/* Notes that the view sums n instances (for the report). */
void funnel_view_set_instances(struct funnel_view *v, int n);

/* window: "15m", "1h", "1d" or "all"; its length in minutes (0 for all),
 * or -1 when it is none of them. */
int funnel_window_minutes(const char *window);
/* The report: {"window", "generated_at", "instances", "campaigns": [...]},
 * one object per campaign (only `campaign` when not NULL; extra names
 * campaigns to list even without counts, e.g. the configured ones). */
struct json_t *funnel_view_report(struct funnel_view *v, const char *window, const char *campaign,
                                  const char *const *extra, size_t n_extra);

#endif
