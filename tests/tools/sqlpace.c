/* sqlpace — run SQL statements, one per line, at a fixed rate over one
 * connection, and write how long each took.
 *
 *   sqlpace -S SOCKET -u USER -D DB -r PER_SECOND IN OUT
 *
 * Statement i starts at t0 + i / rate (or at once when the previous one
 * ended later: then it is late, and the summary says how many were); each is
 * its own autocommit transaction.  OUT gets one line per statement: its
 * time in microseconds from sending it to the server's answer.  The last
 * line on stdout: "statements late_count seconds".  It is the bench's bare
 * client: the database's share of a transaction's time, measured beside the
 * daemon's at the same rate.  Exit 1 on any error (said on stderr).  Test
 * tool: not part of the daemon; blocking by design.
 */
#include <errno.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mysql.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr, "usage: sqlpace -S SOCKET -u USER -D DB -r PER_SECOND [-c N] IN OUT\n");
    exit(2);
}

struct worker {
    const char *sock, *user, *db;
    char **lines;
    size_t *lens;
    uint64_t *us; /* per statement */
    size_t n, first, stride;
    uint64_t t0, step;
    unsigned long late;
    int failed;
};

static void work(struct worker *w)
{
    MYSQL *my = mysql_init(NULL);
    if (!my || !mysql_real_connect(my, NULL, w->user, NULL, w->db, 0, w->sock, 0)) {
        fprintf(stderr, "sqlpace: connect: %s\n", my ? mysql_error(my) : "out of memory");
        w->failed = 1;
        return;
    }
    for (size_t i = w->first; i < w->n; i += w->stride) {
        uint64_t at = w->t0 + i * w->step, now = now_ns();
        if (now < at) {
            struct timespec ts = {.tv_sec = (time_t)(at / 1000000000u),
                                  .tv_nsec = (long)(at % 1000000000u)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        } else if (now > at + w->step * w->stride)
            w->late++;
        uint64_t s = now_ns();
        if (mysql_real_query(my, w->lines[i], (unsigned long)w->lens[i])) {
            fprintf(stderr, "sqlpace: statement %zu: %s\n", i + 1, mysql_error(my));
            w->failed = 1;
            break;
        }
        MYSQL_RES *res = mysql_store_result(my);
        if (res)
            mysql_free_result(res);
        w->us[i] = (now_ns() - s) / 1000u;
    }
    mysql_close(my);
}

int main(int argc, char **argv)
{
    const char *sock = NULL, *user = "root", *db = NULL;
    double rate = 0;
    long conns = 1;
    int c;
    while ((c = getopt(argc, argv, "S:u:D:r:c:")) != -1) {
        switch (c) {
        case 'S': sock = optarg; break;
        case 'u': user = optarg; break;
        case 'D': db = optarg; break;
        case 'r': rate = strtod(optarg, NULL); break;
        case 'c': conns = strtol(optarg, NULL, 10); break;
        default: usage();
        }
    }
    if (!sock || !db || rate <= 0 || conns < 1 || conns > 64 || optind + 2 != argc)
        usage();
    FILE *in = fopen(argv[optind], "r"), *out = fopen(argv[optind + 1], "w");
    if (!in || !out) {
        fprintf(stderr, "sqlpace: %s: %s\n", argv[in ? optind + 1 : optind], strerror(errno));
        return 1;
    }
    char **lines = NULL, *line = NULL;
    size_t *lens = NULL, n = 0, cap = 0, lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, in)) > 0) {
        while (len && (line[len - 1] == '\n' || line[len - 1] == ';'))
            line[--len] = '\0';
        if (!len)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            lines = realloc(lines, cap * sizeof *lines);
            lens = realloc(lens, cap * sizeof *lens);
            if (!lines || !lens)
                return 1;
        }
        lines[n] = line;
        lens[n++] = (size_t)len;
        line = NULL;
        lcap = 0;
    }
    uint64_t *us = calloc(n + 1, sizeof *us);
    struct worker *w = calloc((size_t)conns, sizeof *w);
    if (!us || !w)
        return 1;
    /* one process per connection (the statement times land in shared memory) */
    uint64_t *shared = mmap(NULL, (n + 1 + (size_t)conns) * sizeof *us, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED)
        return 1;
    free(us);
    us = shared;
    uint64_t *lates = us + n + 1;
    uint64_t t0 = now_ns() + 200000000u; /* every connection up first */
    int failed = 0;
    for (long j = 0; j < conns; j++) {
        w[j] = (struct worker){.sock = sock, .user = user, .db = db, .lines = lines, .lens = lens,
                               .us = us, .n = n, .first = (size_t)j, .stride = (size_t)conns,
                               .t0 = t0, .step = (uint64_t)(1e9 / rate)};
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            work(&w[j]);
            lates[j] = w[j].late;
            _exit(w[j].failed);
        }
    }
    unsigned long late = 0;
    for (long j = 0; j < conns; j++) {
        int st = 0;
        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
            failed = 1;
    }
    for (long j = 0; j < conns; j++)
        late += (unsigned long)lates[j];
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%llu\n", (unsigned long long)us[i]);
    printf("%zu %lu %.3f\n", n, late, (double)(now_ns() - t0) / 1e9);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    free(lens);
    munmap(us, (n + 1 + (size_t)conns) * sizeof *us);
    free(w);
    fclose(in);
    return fclose(out) || failed ? 1 : 0;
}
