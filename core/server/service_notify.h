/* Tells the service manager how the server is doing (systemd's sd_notify
 * protocol through libsystemd): ready once every worker listens, reloading
 * during a SIGHUP, stopping on SIGTERM. Does nothing unless the manager
 * asked for it by setting NOTIFY_SOCKET (Type=notify units). */
#ifndef WX_SERVICE_NOTIFY_H
#define WX_SERVICE_NOTIFY_H

void service_notify_ready(int n_workers);
void service_notify_reloading(void);
void service_notify_stopping(void);

#endif
