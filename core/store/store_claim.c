/* Claim, or wait for the first claimer's result (see store.h).
 *
 * The claim is an add: exactly one caller, across workers and instances,
 * wins it. The others poll the result key every poll_ms until accept() takes
 * what they read, or gives up, or wait_ms pass. Polling is plain store reads
 * on the caller's loop: nothing blocks, and it works the same on the memory
 * store and on Redis (which has no cheap per-key notification). */
#include "store.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

struct claim_op {
    store_conn_t *conn;
    struct event *timer;
    struct store_claim_spec spec; /* its keys point into keys[] */
    store_claim_cb cb;
    void *arg;
    int polls, max_polls;
    char keys[]; /* claim key, claim value, result key */
};

static void finish(struct claim_op *op, enum store_claim_outcome o, const char *v, size_t len)
{
    if (op->timer)
        event_free(op->timer);
    store_claim_cb cb = op->cb;
    void *arg = op->arg;
    free(op);
    cb(o, v, len, arg);
}

static void poll_result(evutil_socket_t fd, short what, void *arg);

static void on_result(const struct store_reply *rep, void *arg)
{
    struct claim_op *op = arg;
    if (rep->status == STORE_ERROR) {
        finish(op, STORE_CLAIM_FAILED, NULL, 0);
        return;
    }
    const char *v = rep->status == STORE_OK ? rep->value : NULL;
    int verdict;
    if (op->spec.accept)
        verdict = op->spec.accept(v, rep->len, op->arg);
    else /* the default: the claim key itself, once its value is no longer the claim */
        verdict = !v ? -1
                  : rep->len != strlen(op->spec.claim_value) ||
                          memcmp(v, op->spec.claim_value, rep->len) != 0
                      ? 1
                      : 0;
    if (verdict > 0) {
        finish(op, STORE_CLAIM_RESULT, v, rep->len);
        return;
    }
    if (verdict < 0) {
        finish(op, STORE_CLAIM_FAILED, NULL, 0);
        return;
    }
    if (++op->polls > op->max_polls) {
        finish(op, STORE_CLAIM_TIMEOUT, NULL, 0);
        return;
    }
    struct timeval tv = {op->spec.poll_ms / 1000, (op->spec.poll_ms % 1000) * 1000};
    evtimer_add(op->timer, &tv);
}

static void poll_result(evutil_socket_t fd, short what, void *arg)
{
    struct claim_op *op = arg;
    const char *k = op->spec.result_key;
    if (store_get(op->conn, k, strlen(k), on_result, op) != 0)
        finish(op, STORE_CLAIM_FAILED, NULL, 0);
}

static void on_claimed(const struct store_reply *rep, void *arg)
{
    struct claim_op *op = arg;
    if (rep->status == STORE_OK) {
        finish(op, STORE_CLAIM_WON, NULL, 0);
    } else if (rep->status != STORE_EXISTS) {
        finish(op, STORE_CLAIM_FAILED, NULL, 0);
    } else if (op->max_polls == 0) {
        finish(op, STORE_CLAIM_TIMEOUT, NULL, 0); /* held by another; not waiting */
    } else {
        struct timeval tv = {op->spec.poll_ms / 1000, (op->spec.poll_ms % 1000) * 1000};
        evtimer_add(op->timer, &tv);
    }
}

int store_claim(store_conn_t *c, struct event_base *base, const struct store_claim_spec *spec,
                store_claim_cb cb, void *arg)
{
    size_t kl = strlen(spec->claim_key) + 1, vl = strlen(spec->claim_value) + 1;
    size_t rl = strlen(spec->result_key ? spec->result_key : spec->claim_key) + 1;
    struct claim_op *op = calloc(1, sizeof(*op) + kl + vl + rl);
    if (!op || spec->poll_ms <= 0)
        goto fail;
    op->conn = c;
    op->spec = *spec;
    op->cb = cb;
    op->arg = arg;
    op->max_polls = spec->wait_ms > 0 ? (spec->wait_ms + spec->poll_ms - 1) / spec->poll_ms : 0;
    memcpy(op->keys, spec->claim_key, kl);
    memcpy(op->keys + kl, spec->claim_value, vl);
    memcpy(op->keys + kl + vl, spec->result_key ? spec->result_key : spec->claim_key, rl);
    op->spec.claim_key = op->keys;
    op->spec.claim_value = op->keys + kl;
    op->spec.result_key = op->keys + kl + vl;
    op->timer = evtimer_new(base, poll_result, op);
    if (!op->timer || store_add(c, op->spec.claim_key, kl - 1, op->spec.claim_value, vl - 1,
                                spec->claim_ttl_ms, on_claimed, op) != 0)
        goto fail;
    return 0;
fail:
    if (op && op->timer)
        event_free(op->timer);
    free(op);
    return -1;
}
