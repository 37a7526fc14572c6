/* sd_notify messages (see service_notify.h). Each is one datagram on
 * NOTIFY_SOCKET (unset or empty: nothing is sent), and a failure to
 * tell the manager is logged, never fatal: the server itself is fine. */
#include "service_notify.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

static void notify(const char *state)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    if (!sock || !*sock) /* not under a service manager that listens */
        return;
    int rc = sd_notify(0, state);
    if (rc < 0)
        log_warn("sd_notify: cannot tell the service manager \"%.*s\": %s",
                 (int)strcspn(state, "\n"), state, strerror(-rc));
}

void service_notify_ready(int n_workers)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving with %d workers", n_workers);
    notify(msg);
}

void service_notify_reloading(void) { notify("RELOADING=1\nSTATUS=reloading the config"); }

void service_notify_stopping(void) { notify("STOPPING=1\nSTATUS=draining"); }
