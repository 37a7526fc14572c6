/* A worker for unit tests of the HTTP module and the handlers: a real HTTP
 * server on a loopback port, a memory store, an upstream client and a Lua
 * VM, all on one event loop that harness_exchange turns until the raw reply
 * to a raw request is complete. Included by one test file each. */
#ifndef WX_TEST_WORKER_HARNESS_H
#define WX_TEST_WORKER_HARNESS_H
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "fetch.h"
#include "http.h"
#include "lua_runtime.h"
#include "server.h"
#include "store.h"

typedef void (*handler_fn)(struct worker *w, struct http_req *r);

struct harness {
    struct worker w;
    store_t *store;
    handler_fn handle;
    int port;
    char reply[65536];
};

static void harness_route(struct http_req *r, void *arg)
{
    struct harness *h = arg;
    h->handle(&h->w, r);
}

/* config_text: a config file's Lua ("return { ... }"), written to a temp
 * file; handle: the handler under test, which gets every request. */
static struct harness *harness_start(const char *config_text, handler_fn handle)
{
    static struct harness h;
    memset(&h, 0, sizeof(h));
    char path[] = "/tmp/wxgate-harness-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, config_text, strlen(config_text)) < 0)
        return NULL;
    close(fd);
    char err[2048];
    h.w.cfg = config_load(path, err, sizeof(err));
    unlink(path);
    if (!h.w.cfg) {
        fprintf(stderr, "harness config: %s\n", err);
        return NULL;
    }
    h.w.base = event_base_new();
    h.handle = handle;
    h.store = store_open("memory", NULL);
    h.w.store = store_attach(h.store, h.w.base);
    h.w.fetch = fetch_loop_new(h.w.base);
    h.w.vm = wxlua_vm_new(&h.w, h.w.cfg, err, sizeof(err));
    int lfd = http_listen("127.0.0.1", 0, &h.port, err, sizeof(err));
    if (!h.w.vm || lfd < 0) {
        fprintf(stderr, "harness: %s\n", err);
        return NULL;
    }
    h.w.http = http_server_new(h.w.base, lfd, &h.w.cfg->limits, NULL, harness_route, &h);
    return h.w.http ? &h : NULL;
}

/* Sends raw (which should ask for Connection: close) and returns the whole
 * reply, turning the loop until the server closes. */
static const char *harness_exchange(struct harness *h, const char *raw)
{
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)h->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        write(c, raw, strlen(raw)) != (ssize_t)strlen(raw))
        return "";
    size_t len = 0;
    for (int turns = 0; turns < 20000; turns++) {
        event_base_loop(h->w.base, EVLOOP_NONBLOCK);
        ssize_t n = recv(c, h->reply + len, sizeof(h->reply) - 1 - len, MSG_DONTWAIT);
        if (n > 0)
            len += (size_t)n;
        else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            break;
        else
            usleep(200);
    }
    close(c);
    h->reply[len] = '\0';
    return h->reply;
}

static void harness_stop(struct harness *h)
{
    http_server_free(h->w.http);
    wxlua_vm_retire(h->w.vm);
    store_detach(h->w.store);
    store_close(h->store);
    fetch_loop_free(h->w.fetch);
    config_release(h->w.cfg);
    event_base_free(h->w.base);
}

#endif
