/* main — command line: parse, build the settings, run.  Nothing else. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "daemon.h"
#include "kafka.h"
#include "log.h"
#include "migrate.h"
#include "redrive.h"
#include "resetmarks.h"
#include "settings.h"

#define EX_USAGE 64
#define EX_CONFIG 78

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: scorekeeper [--config FILE] [-o KEY=VALUE]... [--check-config] [COMMAND]\n"
            "\n"
            "Consumes user and score events from Kafka, applies them to MariaDB in\n"
            "per-game batches, and publishes a result event for every input event.\n"
            "\n"
            "Commands:\n"
            "  run        run the daemon (default)\n"
            "  migrate    apply the SQL migrations in sql.dir that the database lacks, then\n"
            "             exit; needs an administrative account in db.url, no Kafka\n"
            "  migrate status\n"
            "             list every migration of sql.dir, applied (when) or pending, and\n"
            "             those the database records but sql.dir lacks; changes nothing\n"
            "  migrate --dry-run\n"
            "             print the SQL that migrate would send, in order; changes nothing\n"
            "  reset-marks --topic TOPIC [--partition N]\n"
            "             delete the applied-offset marks (game_offsets) of TOPIC, or of\n"
            "             one partition, after the daemon refused it because its offsets\n"
            "             were used again (topic recreated, log truncated); needs an\n"
            "             administrative account in db.url; then reload the daemon\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE   read settings from FILE (key = value lines)\n"
            "  -o KEY=VALUE        set one setting; overrides the file; repeatable\n"
            "      --check-config  check the settings, print them (secrets masked), try to\n"
            "                      reach MariaDB and Kafka, and exit\n"
            "  -h, --help          this text and every setting\n"
            "  -V, --version       print the version\n"
            "\n"
            "Secrets are never taken from the command line or the configuration file:\n"
            "the database password comes from db.password_file or the systemd credential\n"
            "db.password ($CREDENTIALS_DIRECTORY/db.password), a Kafka secret such as\n"
            "kafka.sasl.password from kafka.sasl.password_file or the credential\n"
            "kafka.sasl.password.  kafka.* properties scorekeeper's promises rest on\n"
            "(enable.auto.commit, enable.idempotence, isolation.level, ...) are refused.\n"
            "\n"
            "The daemon (run) starts only on a database where every migration of sql.dir\n"
            "is applied; otherwise it names the missing ones and exits 78.\n"
            "\n"
            "Signals: TERM/INT drain and stop; HUP reloads the settings that may change at\n"
            "run time (marked [reload] below) from the same file and -o options.\n"
            "\n"
            "Exit codes: 0 ok, 1 runtime failure, 64 usage, 65 migration failed,\n"
            "66 no migrations to read (sql.dir), 69 service unreachable, 70 internal\n"
            "error (migrate), 77 not allowed (Kafka refused the SASL credentials;\n"
            "reset-marks as the runtime account), 78 configuration error (also under\n"
            "--check-config), or a database schema older than the daemon needs.\n"
            "\n"
            "Settings:\n%s",
            sk_config_help());
}

/* migrate's own argument: none, "status" or "--dry-run".  False (said on
 * stderr) when it is something else. */
static bool migrate_args(int argc, char **argv, enum sk_migrate_mode *mode)
{
    *mode = SK_MIGRATE_APPLY;
    if (argc == 0)
        return true;
    bool status = !strcmp(argv[0], "status"), dry = !strcmp(argv[0], "--dry-run");
    if (argc == 1 && (status || dry)) {
        *mode = status ? SK_MIGRATE_STATUS : SK_MIGRATE_DRY_RUN;
        return true;
    }
    fprintf(stderr, "scorekeeper: migrate: unexpected argument \"%s\" (status or --dry-run; "
                    "try --help)\n", argv[status || dry ? 1 : 0]);
    return false;
}

/* reset-marks' own arguments: --topic T (a Kafka topic name) and
 * optionally --partition N.  False (said on stderr) when they are wrong. */
static bool reset_args(int argc, char **argv, const char **topic, int32_t *partition)
{
    *topic = NULL;
    *partition = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        size_t n = strcspn(a, "=");
        if (a[n] == '=')
            v = a + n + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        if (!v) {
            fprintf(stderr, "scorekeeper: reset-marks: %s needs a value\n", a);
            return false;
        }
        if (n == 7 && !strncmp(a, "--topic", n)) {
            if (!sk_kafka_topic_name_ok(v)) {
                fprintf(stderr, "scorekeeper: reset-marks: \"%s\" is not a Kafka topic name\n", v);
                return false;
            }
            *topic = v;
        } else if (n == 11 && !strncmp(a, "--partition", n)) {
            char *end = NULL;
            errno = 0;
            long p = strtol(v, &end, 10);
            if (errno || end == v || *end || p < 0 || p > INT32_MAX) {
                fprintf(stderr, "scorekeeper: reset-marks: \"%s\" is not a partition number\n", v);
                return false;
            }
            *partition = (int32_t)p;
        } else {
            fprintf(stderr, "scorekeeper: reset-marks: unknown argument \"%.*s\" (try --help)\n",
                    (int)n, a);
            return false;
        }
    }
    if (!*topic)
        fprintf(stderr, "scorekeeper: reset-marks: --topic is required (try --help)\n");
    return *topic != NULL;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct sk_settings_src src = {0};
    bool check = false;
    int c;
    src.overrides = calloc((size_t)argc, sizeof *src.overrides);
    if (!src.overrides)
        return EXIT_FAILURE;
    while ((c = getopt_long(argc, argv, "+c:o:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': src.config_file = optarg; break;
        case 'o': src.overrides[src.n_overrides++] = optarg; break;
        case 'C': check = true; break;
        case 'h': usage(stdout); free(src.overrides); return 0;
        case 'V': printf("scorekeeper %s\n", SK_VERSION); free(src.overrides); return 0;
        default: usage(stderr); free(src.overrides); return EX_USAGE;
        }
    }
    const char *command = optind < argc ? argv[optind] : "run";
    const char *topic = NULL;
    int32_t partition = -1;
    enum sk_migrate_mode mode = SK_MIGRATE_APPLY;
    bool reset = !strcmp(command, "reset-marks"), redrive = !strcmp(command, "redrive"),
         migrate = !strcmp(command, "migrate");
    int nargs = optind < argc ? argc - optind - 1 : 0;
    struct sk_redrive_args rd;
    bool ok = true;
    if (redrive) {
        int urc = sk_redrive_args_parse(nargs, argv + optind + 1, &rd);
        if (urc) {
            free(src.overrides);
            return urc;
        }
    } else if (reset) {
        ok = reset_args(nargs, argv + optind + 1, &topic, &partition);
    } else if (migrate) {
        ok = migrate_args(nargs, argv + optind + 1, &mode);
    } else if (strcmp(command, "run") || nargs) {
        fprintf(stderr, "scorekeeper: unknown command \"%s\" (try --help)\n", command);
        ok = false;
    }
    if (!ok) {
        free(src.overrides);
        return EX_USAGE;
    }

    sk_log_init("scorekeeper");
    struct sk_config cfg;
    char err[1024];
    if (sk_settings_load(&src, &cfg, err, sizeof err) < 0) {
        log_error("configuration: %s", err);
        if (check)
            printf("configuration: FAILED: %s\n", err);
        free(src.overrides);
        return EX_CONFIG;
    }
    sk_log_set_level(cfg.log_level);
    /* The commands that only talk to the database need no Kafka settings. */
    if ((check || (!migrate && !reset)) && sk_config_require_kafka(&cfg, err, sizeof err) < 0) {
        log_error("configuration: %s", err);
        if (check)
            printf("configuration: FAILED: %s\n", err);
        sk_config_free(&cfg);
        free(src.overrides);
        return EX_CONFIG;
    }
    int rc;
    if (check)
        rc = sk_check_run(&cfg);
    else if (migrate)
        rc = sk_migrate_run(&cfg, mode);
    else if (reset)
        rc = sk_resetmarks_run(&cfg, topic, partition);
    else if (redrive)
        rc = sk_redrive_run(&cfg, &rd);
    else
        rc = sk_daemon_run(&cfg, &src);
    sk_config_free(&cfg);
    free(src.overrides);
    return rc;
}

int main(int argc, char **argv) { return run(argc, argv); }
