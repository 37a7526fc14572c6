/* An environment file: the KEY=VALUE lines of systemd's EnvironmentFile=,
 * read by the config (its env_file key) so that `{ env = "NAME" }` secrets
 * can live in one file only the service user reads (/etc/wxgate/secrets.env)
 * and `wxgate check` sees the same values as the service. */
#ifndef WX_ENV_FILE_H
#define WX_ENV_FILE_H
#include <stddef.h>

struct env_file;

/* Reads path: blank lines and lines starting with # or ; are skipped, an
 * optional "export " prefix is allowed, a value may be wrapped in single or
 * double quotes. Refuses a file that other users can read or write, and a
 * malformed line (naming its number, never its text: it may hold a secret).
 * Returns NULL with why set on failure. */
struct env_file *env_file_read(const char *path, char *why, size_t whysz);
/* The value of name, or NULL when the file does not set it. */
const char *env_file_get(const struct env_file *e, const char *name);
/* Wipes the values and frees e (NULL is fine). */
void env_file_free(struct env_file *e);

#endif
