/* The sandbox's development CA: lets `wxgate sandbox --tls` serve HTTPS that
 * a developer's browser and the gateway can trust, without a public CA. */
#ifndef WX_DEV_CA_H
#define WX_DEV_CA_H
#include <stddef.h>

/* Creates (or reuses) dir/ca.pem, dir/ca-key.pem, dir/server.pem and
 * dir/server-key.pem: a development CA and a leaf for hosts. 0 or -1. */
int dev_ca_issue(const char *dir, const char *const *hosts, size_t n_hosts, char *err,
                 size_t errsz);

#endif
