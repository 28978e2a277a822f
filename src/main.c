/* main — command line: parse, build the settings, run.  Nothing else. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "migrate.h"

#define EX_USAGE 64
#define EX_CONFIG 78

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: scorekeeper [--config FILE] [-o KEY=VALUE]... [COMMAND]\n"
            "\n"
            "Consumes user and score events from Kafka, applies them to MariaDB in\n"
            "per-game batches, and publishes a result event for every input event.\n"
            "\n"
            "Commands:\n"
            "  run        run the daemon (default)\n"
            "  migrate    apply the SQL migrations in sql.dir, then exit\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE   read settings from FILE (key = value lines)\n"
            "  -o KEY=VALUE        set one setting; overrides the file; repeatable\n"
            "  -h, --help          this text and every setting\n"
            "  -V, --version       print the version\n"
            "\n"
            "Secrets are never taken from the command line: the database password comes\n"
            "from db.password_file or $CREDENTIALS_DIRECTORY/db.password.\n"
            "\n"
            "Exit codes: 0 ok, 64 usage, 65 migration failed, 69 service unreachable,\n"
            "78 configuration error, 1 runtime failure.\n"
            "\n"
            "Settings:\n%s",
            sk_config_help());
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config_file = NULL;
    int c;
    /* Two passes: the file first, then every -o in order, so that -o wins
     * whatever the order on the command line. */
    while ((c = getopt_long(argc, argv, "+c:o:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_file = optarg; break;
        case 'o': break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("scorekeeper %s\n", SK_VERSION); return 0;
        default: usage(stderr); return EX_USAGE;
        }
    }
    const char *command = optind < argc ? argv[optind] : "run";
    if (optind + 1 < argc || (strcmp(command, "run") && strcmp(command, "migrate"))) {
        fprintf(stderr, "scorekeeper: unknown command \"%s\" (try --help)\n", command);
        return EX_USAGE;
    }

    sk_log_init("scorekeeper");
    struct sk_config cfg;
    char err[1024];
    if (sk_config_init(&cfg) < 0) {
        fprintf(stderr, "scorekeeper: out of memory\n");
        return EXIT_FAILURE;
    }
    int rc = EX_CONFIG;
    if (config_file && sk_config_load_file(&cfg, config_file, err, sizeof err) < 0)
        goto config_error;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+c:o:hV", opts, NULL)) != -1) {
        if (c != 'o')
            continue;
        char *eq = strchr(optarg, '=');
        if (!eq) {
            snprintf(err, sizeof err, "-o \"%s\": expected KEY=VALUE", optarg);
            goto config_error;
        }
        *eq = '\0';
        int r = sk_config_set(&cfg, optarg, eq + 1, "-o", err, sizeof err);
        *eq = '=';
        if (r < 0)
            goto config_error;
    }
    if (sk_config_finish(&cfg, err, sizeof err) < 0)
        goto config_error;
    sk_log_set_level(cfg.log_level);

    if (!strcmp(command, "migrate"))
        rc = sk_migrate_run(&cfg);
    else
        rc = sk_daemon_run(&cfg);
    sk_config_free(&cfg);
    return rc;

config_error:
    log_error("configuration: %s", err);
    sk_config_free(&cfg);
    return rc;
}

int main(int argc, char **argv) { return run(argc, argv); }
