/* config_text — the settings as text: a config file read
 * (sk_config_load_file) with the files it includes, the effective settings
 * written back in the same syntax (sk_config_dump), and the --help text;
 * see include/config.h.
 *
 * File syntax (also in sk_config_help()):
 *   key = value        blanks around key and value are trimmed
 *   # comment          only as the first non-blank character of a line
 *   key = a#b          '#' anywhere else belongs to the value
 *   key = "  x  "      a value starting with '"' must be exactly one quoted
 *                      string; it keeps blanks, \" and \\ are its escapes
 *   include = PATH     read PATH (a file, or every *.conf in a directory, in
 *                      name order) here; relative to the including file
 * Quotes are file syntax only: `-o key=value` takes the value literally,
 * the shell has already done the quoting there. */
#include "config_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <threads.h>

#define MAX_LINE 4096   /* bytes per config file line, newline excluded */
#define MAX_INCLUDE 8   /* files open at once: the top one and 7 nested includes */

/* One read of a file and the files it includes. */
struct reader {
    struct sk_config *c;
    char *err;
    size_t errlen;
    unsigned depth; /* files open */
    struct {
        dev_t dev;
        ino_t ino;
    } open[MAX_INCLUDE]; /* the files being read, outermost first: an include loop */
};

static int read_file(struct reader *r, const char *path, const char *from);

/* ---- file --------------------------------------------------------------- */

static bool blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f'; }

static char *trim(char *s)
{
    while (blank(*s))
        s++;
    size_t n = strlen(s);
    while (n && blank(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Undo the quoting of a value that starts with '"', in place. */
static int unquote(char *v, const char *origin, const char *key, char *err, size_t errlen)
{
    char *out = v;
    const char *p = v + 1;
    for (;; p++) {
        if (*p == '\0')
            return fail(err, errlen, "%s: unterminated quoted value for \"%s\"", origin, key);
        if (*p == '"')
            break;
        if (*p == '\\') {
            p++;
            if (*p != '"' && *p != '\\')
                return fail(err, errlen,
                            "%s: invalid escape in the quoted value for \"%s\" "
                            "(only \\\" and \\\\ are known)", origin, key);
        }
        *out++ = *p;
    }
    if (p[1] != '\0')
        return fail(err, errlen, "%s: text after the closing quote of the value for \"%s\"",
                    origin, key);
    *out = '\0';
    return 0;
}

/* Record a file read, for --check-config; 0 or -ENOMEM. */
static int note_file(struct sk_config *c, const char *path)
{
    char **v = realloc(c->files, (c->n_files + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    c->files = v;
    if (!(v[c->n_files] = strdup(path)))
        return -ENOMEM;
    c->n_files++;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.conf in dir, in name order (C locale), as if included one by one;
 * an empty directory is fine. */
static int read_dir(struct reader *r, const char *dir, const char *origin)
{
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        return sk_errf_code(-e, r->err, r->errlen, "%s: cannot open directory %s: %s", origin,
                            dir, strerror(e));
    }
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".conf") != 0)
            continue;
        char **v = realloc(names, (n + 1) * sizeof *v);
        if (!v || !(v[n] = malloc(strlen(dir) + len + 2))) {
            names = v ? v : names;
            rc = sk_errf_code(-ENOMEM, r->err, r->errlen, "out of memory reading %s", dir);
            break;
        }
        names = v;
        sprintf(names[n++], "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (rc == 0 && n) /* qsort takes no NULL array, even empty */
        qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = read_file(r, names[i], origin);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* `include = value` at origin ("file:line") of the file at path. */
static int include(struct reader *r, const char *path, const char *value, const char *origin)
{
    if (!*value)
        return fail(r->err, r->errlen, "%s: include needs a file or directory", origin);
    if (config_has_ctl(value))
        return fail(r->err, r->errlen, "%s: control characters in the include path", origin);
    const char *slash = strrchr(path, '/');
    size_t dirlen = value[0] != '/' && slash ? (size_t)(slash - path) + 1 : 0;
    char *full = malloc(dirlen + strlen(value) + 1);
    if (!full)
        return sk_errf_code(-ENOMEM, r->err, r->errlen, "out of memory reading %s", path);
    memcpy(full, path, dirlen); /* relative: to the including file's directory */
    strcpy(full + dirlen, value);
    struct stat st;
    int rc;
    if (stat(full, &st) < 0) {
        int e = errno;
        rc = sk_errf_code(-e, r->err, r->errlen, "%s: cannot include %s: %s", origin, full,
                          strerror(e));
    } else {
        rc = S_ISDIR(st.st_mode) ? read_dir(r, full, origin) : read_file(r, full, origin);
    }
    free(full);
    return rc;
}

static int parse_line(struct reader *r, const char *path, char *line, const char *origin)
{
    struct sk_config *c = r->c;
    char *err = r->err;
    size_t errlen = r->errlen;
    char *s = trim(line);
    if (*s == '\0' || *s == '#')
        return 0;
    char *eq = strchr(s, '=');
    if (!eq) /* the line is not quoted: it may be a misplaced secret */
        return fail(err, errlen, "%s: expected \"key = value\" (no '=' on this line)", origin);
    *eq = '\0';
    char *key = trim(s);
    char *value = trim(eq + 1);
    if (!*key)
        return fail(err, errlen, "%s: missing key before '='", origin);
    if (*value == '"') {
        int rc = unquote(value, origin, key, err, errlen);
        if (rc < 0)
            return rc;
    }
    if (strcmp(key, "include") == 0)
        return include(r, path, value, origin);
    return sk_config_set(c, key, value, origin, err, errlen);
}

/* Read one file; from is the "file:line" of the include that names it,
 * NULL for the top one. */
static int read_file(struct reader *r, const char *path, const char *from)
{
    char *err = r->err;
    size_t errlen = r->errlen;
    char where[32 + 4096];
    snprintf(where, sizeof where, "%s%s", from ? from : "", from ? ": " : "");
    if (r->depth == MAX_INCLUDE)
        return fail(err, errlen, "%sincludes nested more than %d files deep", where,
                    MAX_INCLUDE - 1);
    struct stat st;
    /* an included FIFO or device would block the start (--config itself may
     * be a pipe: --config <(...)) */
    if (from && stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return fail(err, errlen, "%scannot include %s: not a regular file", where, path);
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        return sk_errf_code(-e, err, errlen, "%scannot open config file %s: %s", where, path,
                            strerror(e));
    }
    if (fstat(fileno(f), &st) < 0) {
        int e = errno;
        fclose(f);
        return sk_errf_code(-e, err, errlen, "%scannot stat config file %s: %s", where, path,
                            strerror(e));
    }
    for (unsigned i = 0; i < r->depth; i++)
        if (r->open[i].dev == st.st_dev && r->open[i].ino == st.st_ino) {
            fclose(f);
            return fail(err, errlen, "%sinclude of %s: it is already being read (an include "
                                     "loop)", where, path);
        }
    r->open[r->depth].dev = st.st_dev;
    r->open[r->depth].ino = st.st_ino;
    r->depth++;
    char *line = malloc(MAX_LINE + 1);
    char *origin = malloc(strlen(path) + 24);
    int rc = 0;
    if (!line || !origin || note_file(r->c, path) < 0) {
        rc = sk_errf_code(-ENOMEM, err, errlen, "out of memory reading %s", path);
        goto out;
    }
    for (unsigned long lineno = 1;; lineno++) {
        size_t len = 0;
        bool too_long = false, nul = false;
        int ch;
        errno = 0;
        while ((ch = getc(f)) != EOF && ch != '\n') {
            if (ch == '\0')
                nul = true;
            if (len < MAX_LINE)
                line[len++] = (char)ch;
            else
                too_long = true;
        }
        if (ch == EOF && ferror(f)) {
            int e = errno ? errno : EIO;
            rc = sk_errf_code(-e, err, errlen, "cannot read config file %s: %s", path, strerror(e));
            goto out;
        }
        if (ch == EOF && len == 0)
            break;
        sprintf(origin, "%s:%lu", path, lineno);
        if (too_long) {
            rc = fail(err, errlen, "%s: line longer than %d bytes", origin, MAX_LINE);
            goto out;
        }
        if (nul) {
            rc = fail(err, errlen, "%s: NUL byte in line", origin);
            goto out;
        }
        line[len] = '\0';
        char *text = line;
        if (lineno == 1 && len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
            text += 3; /* UTF-8 byte order mark */
        rc = parse_line(r, path, text, origin);
        if (rc < 0 || ch == EOF)
            break;
    }
out:
    if (line)
        explicit_bzero(line, MAX_LINE + 1); /* it may have held a kafka secret */
    free(line);
    free(origin);
    fclose(f);
    r->depth--;
    return rc;
}

int sk_config_load_file(struct sk_config *c, const char *path, char *err, size_t errlen)
{
    struct reader r = {.c = c, .err = err, .errlen = errlen};
    return read_file(&r, path, NULL);
}

/* ---- dump, help --------------------------------------------------------- */

static void put_value(struct sk_buf *b, const char *v)
{
    size_t n = strlen(v);
    if (n && v[0] != '"' && !blank(v[0]) && !blank(v[n - 1])) {
        sk_buf_puts(b, v);
        return;
    }
    sk_buf_putc(b, '"');
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            sk_buf_putc(b, '\\');
        sk_buf_putc(b, *v);
    }
    sk_buf_putc(b, '"');
}

static void emit(struct sk_buf *b, const char *key, const char *value, bool secret,
                 void (*line)(void *ud, const char *text), void *ud)
{
    sk_buf_reset(b);
    sk_buf_printf(b, "%s = ", key);
    if (!value)
        sk_buf_puts(b, "\"\"");
    else if (secret)
        sk_buf_puts(b, MASK);
    else
        put_value(b, value);
    line(ud, sk_buf_failed(b) ? "(out of memory)" : sk_buf_cstr(b));
}

void sk_config_dump(const struct sk_config *c, void (*line)(void *ud, const char *text), void *ud)
{
    struct sk_buf b;
    char tmp[32];
    sk_buf_init(&b);
    for (size_t i = 0; i < config_nopts; i++) {
        const struct opt *o = &config_opts[i];
        emit(&b, o->key, config_value_text(c, o, tmp, sizeof tmp), config_opt_secret(o), line, ud);
        if (o->off == offsetof(struct sk_config, db_password_file))
            emit(&b, "db.password", c->db_password ? "(set)" : "(not set)", false, line, ud);
    }
    /* kafka.* in key order, without allocating: each round prints the
     * smallest key above the previous one (keys are unique). */
    const char *prev = NULL;
    for (size_t round = 0; round < c->n_kafka; round++) {
        const struct sk_kv *next = NULL;
        for (size_t i = 0; i < c->n_kafka; i++) {
            const struct sk_kv *kv = &c->kafka[i];
            if ((!prev || strcmp(kv->key, prev) > 0) && (!next || strcmp(kv->key, next->key) < 0))
                next = kv;
        }
        if (!next)
            break;
        sk_buf_reset(&b);
        sk_buf_printf(&b, "kafka.%s", next->key);
        char *key = strdup(sk_buf_cstr(&b));
        if (key) {
            emit(&b, key, next->value, sk_config_key_is_secret(key), line, ud);
            free(key);
        } else {
            line(ud, "(out of memory)");
        }
        prev = next->key;
    }
    sk_buf_free(&b);
}

static char help_text[16384];
static once_flag help_once = ONCE_FLAG_INIT;

static void build_help(void)
{
    struct sk_buf b;
    char exp[256], def[256];
    sk_buf_init(&b);
    sk_buf_puts(&b,
        "Configuration file (-c FILE) and overrides (-o key=value, applied after the file):\n"
        "  key = value       one setting per line; blanks around key and value are ignored\n"
        "  # comment         only as the first non-blank character of a line; elsewhere\n"
        "                    '#' is part of the value (key = a#b sets \"a#b\")\n"
        "  key = \"  v  \"     a value that starts with '\"' must be one quoted string; it\n"
        "                    keeps blanks; \\\" and \\\\ are its only escapes.  Quotes are\n"
        "                    file syntax: -o values are taken literally\n"
        "  include = PATH    read PATH here: a file, or every *.conf of a directory in\n"
        "                    name order; relative to the including file; what follows\n"
        "                    overrides it (a shared base, then an instance's own lines)\n"
        "  kafka.<property>  any other librdkafka property, passed to both clients;\n"
        "                    kafka.consumer.<property>, kafka.producer.<property>: one\n"
        "  kafka.<secret>_file  file holding a secret property (sasl.password, ...);\n"
        "                    else the credential $CREDENTIALS_DIRECTORY/kafka.<secret>\n"
        "  Lines are at most 4096 bytes.  A later setting replaces an earlier one.\n"
        "  Sizes take a suffix k, M or G (1024-based).  [reload] marks settings a\n"
        "  reload (SIGHUP) may change; the others need a restart.\n"
        "\n"
        "Settings:\n");
    for (size_t i = 0; i < config_nopts; i++) {
        const struct opt *o = &config_opts[i];
        if (o->check == config_check_topic)
            snprintf(exp, sizeof exp, "Kafka topic name");
        else if (o->type == OT_STR)
            snprintf(exp, sizeof exp, "text");
        else
            config_expected(o, exp, sizeof exp);
        const char *e = strncmp(exp, "expected ", 9) == 0 ? exp + 9 : exp;
        if (o->type == OT_SIZE && o->def) {
            uint64_t v;
            if (config_parse_size(o->def, &v))
                config_fmt_size(v, def, sizeof def);
            else
                snprintf(def, sizeof def, "%s", o->def);
        } else {
            snprintf(def, sizeof def, "%s", o->def ? o->def : "none");
        }
        sk_buf_printf(&b, "  %s%s%s  (%s; default %s)%s\n      %s\n", o->key,
                      o->alias ? ", " : "", o->alias ? o->alias : "", e, def,
                      (o->flags & OF_RELOAD) ? " [reload]" : "", o->help);
    }
    snprintf(help_text, sizeof help_text, "%s",
             sk_buf_failed(&b) ? "(out of memory)\n" : sk_buf_cstr(&b));
    sk_buf_free(&b);
}

const char *sk_config_help(void)
{
    call_once(&help_once, build_help);
    return help_text;
}
