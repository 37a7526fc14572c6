/* The basic access_token and the JS-SDK jsapi ticket of each app, with
 * exactly one owner across workers and instances: a lock in the store (with
 * a fencing number) lets one request fetch while the others wait for its
 * result; tokens are refreshed ahead of expiry and re-fetched at once when
 * WeChat says 40001/42001; cgi-bin/token calls are counted against the daily
 * quota. */
#ifndef WX_JSSDK_H
#define WX_JSSDK_H

struct worker;
struct config;
struct config_app;
struct wxlua_vm;
struct jssdk_op;

/* ticket is the jsapi ticket, or NULL with err ("timeout", "quota", ...). */
typedef void (*jssdk_cb)(const char *ticket, const char *err, void *arg);

/* cb runs exactly once, possibly before this returns (then NULL is
 * returned); otherwise the returned op can be cancelled. */
struct jssdk_op *jssdk_ticket(struct worker *w, const struct config_app *app, jssdk_cb cb,
                              void *arg);
/* The app's basic access_token (for Mini Program calls such as
 * getuserphonenumber), from the same single owner as the ticket's: cb gets
 * the token or NULL with err. stale: a token WeChat just refused (40001),
 * never handed out again, or NULL. Same rules as jssdk_ticket. */
struct jssdk_op *jssdk_basic_token(struct worker *w, const struct config_app *app,
                                   const char *stale, jssdk_cb cb, void *arg);
void jssdk_cancel(struct jssdk_op *op);
/* Ops and lock releases of this worker's thread still under way (they go on
 * after their request is answered): a stopping worker drains them too. */
int jssdk_pending(void);

/* Fills {appId, timestamp, nonceStr, signature} fields for url. */
struct jssdk_sig {
    char timestamp[24];
    char nonce[17];
    char signature[41];
};
/* 0 ok; -1 when the OS gives no random nonce (nothing is filled in). */
int jssdk_sign(const char *ticket, const char *url, struct jssdk_sig *out);

#endif
