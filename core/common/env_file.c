/* Environment files (see env_file.h). */
#include "env_file.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct env_file {
    char **names, **values;
    size_t n, cap;
};

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static int valid_name(const char *s)
{
    if (!*s || isdigit((unsigned char)*s))
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return 0;
    return 1;
}

/* Adds name=value; a later line overrides an earlier one, as in a shell. */
static int put(struct env_file *e, const char *name, const char *value)
{
    for (size_t i = 0; i < e->n; i++) {
        if (strcmp(e->names[i], name) == 0) {
            char *v = strdup(value);
            if (!v)
                return -1;
            explicit_bzero(e->values[i], strlen(e->values[i]));
            free(e->values[i]);
            e->values[i] = v;
            return 0;
        }
    }
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 8;
        char **names = realloc(e->names, cap * sizeof(char *));
        if (!names)
            return -1;
        e->names = names;
        char **values = realloc(e->values, cap * sizeof(char *));
        if (!values)
            return -1;
        e->values = values;
        e->cap = cap;
    }
    e->names[e->n] = strdup(name);
    e->values[e->n] = strdup(value);
    if (!e->names[e->n] || !e->values[e->n]) {
        free(e->names[e->n]);
        free(e->values[e->n]);
        return -1;
    }
    e->n++;
    return 0;
}

/* One line into e: 0 done (or nothing to do), -1 malformed. */
static int parse_line(struct env_file *e, char *line)
{
    char *s = trim(line);
    if (!*s || *s == '#' || *s == ';')
        return 0;
    if (strncmp(s, "export ", 7) == 0)
        s = trim(s + 7);
    char *eq = strchr(s, '=');
    if (!eq)
        return -1;
    *eq = '\0';
    char *name = trim(s), *value = trim(eq + 1);
    if (!valid_name(name))
        return -1;
    size_t n = strlen(value);
    if (n >= 2 && (value[0] == '"' || value[0] == '\'') && value[n - 1] == value[0]) {
        value[n - 1] = '\0';
        value++;
    }
    return put(e, name, value);
}

struct env_file *env_file_read(const char *path, char *why, size_t whysz)
{
    why[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, whysz, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IROTH | S_IWOTH))) {
        snprintf(why, whysz,
                 "%s is open to every user (mode %03o): it holds secrets, make it 0640 "
                 "root:wxgate or 0600",
                 path, (unsigned)(st.st_mode & 0777));
        fclose(f);
        return NULL;
    }
    struct env_file *e = calloc(1, sizeof(*e));
    char line[8192];
    int lineno = 0;
    while (e && fgets(line, sizeof(line), f)) {
        lineno++;
        if (parse_line(e, line) != 0) {
            snprintf(why, whysz, "%s line %d: expected NAME=VALUE (NAME of letters, digits, _)",
                     path, lineno);
            env_file_free(e);
            e = NULL;
        }
    }
    explicit_bzero(line, sizeof(line));
    fclose(f);
    if (!e && !*why)
        snprintf(why, whysz, "out of memory reading %s", path);
    return e;
}

const char *env_file_get(const struct env_file *e, const char *name)
{
    for (size_t i = 0; e && i < e->n; i++)
        if (strcmp(e->names[i], name) == 0)
            return e->values[i];
    return NULL;
}

void env_file_free(struct env_file *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++) {
        explicit_bzero(e->values[i], strlen(e->values[i]));
        free(e->values[i]);
        free(e->names[i]);
    }
    free(e->names);
    free(e->values);
    free(e);
}
