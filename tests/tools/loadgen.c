/* loadgen — publish a realistic, reproducible quiz-game event stream to Kafka.
 *
 * Usage:
 *   build/tools/loadgen -b 127.0.0.1:39092 --users-topic lg.users --scores-topic lg.scores \
 *       -n 100000 -g 200 -u 5000 --invalid 300 --seed 7 --ledger /tmp/lg.ledger
 *   build/tools/loadgen --help
 *
 * What it sends (see schemas/README.md for the contract):
 *   user events  -> users topic,  key = username:
 *       {"event_id":"u-7-12","username":"u42","nickname":"Zoë 17"}   (nickname string,
 *       null, or absent)
 *   score events -> scores topic, key = game id in canonical decimal:
 *       {"event_id":"u-7-13","game_id":5,"game_name":"Pub trivia #5","username":"u3","delta":120}
 *       delta in -50..500 or "set" in 0..10000 (--set-pct).
 *   --invalid N events are mixed in at random positions, each with a single known rejection
 *       code: wrong_type, missing_field, out_of_range (game id), too_long (username),
 *       invalid_json, invalid_utf8, unknown_field, key_mismatch.
 *
 * Usernames are PREFIX<n> (n = 1..U, low n = more active players); event ids are
 * PREFIX-SEED-SEQ, so a run with the same prefix and seed replays the same event ids
 * (the daemon then reports "duplicate").  Games are GAME_BASE .. GAME_BASE+G-1.
 * Game popularity (which game the next score belongs to), the number of players per game
 * (popular games have many players) and which users play (and how often) follow a
 * Zipf-like law with exponent --skew (0 = uniform).
 *
 * The world (which games exist in which order of popularity, and each game's roster of
 * players) comes from --world-seed, by default the same as --seed: a second stream with
 * another --seed and the first one's --world-seed continues the same games with the same
 * players, as after a restart of the consumer, where another --seed alone starts a new world
 * (new rosters, so mostly new (game, user) pairs and some new users).
 *
 * Everything except the sk-sent-ns header is a pure function of the options, --seed and
 * --world-seed.
 *
 * Ledger (--ledger FILE): one line per produced event in production order, TAB-separated:
 *   seq topic kind game_id username op value nickname correlation-id
 *   kind     user | score | invalid
 *   game_id  decimal (score events and invalid score-topic events that carry one), else -
 *   username the username (- when the invalid payload has none or it is not valid UTF-8)
 *   op       score: delta | set;  user: -;  invalid: the expected rejection code
 *   value    score: the delta or the set value;  otherwise -
 *   nickname user events: the nickname set, \N when the event sets null (clears it),
 *            empty when the event has no nickname member (nickname untouched);
 *            other kinds: -
 *   correlation-id  SEED-SEQ as sent in the correlation-id header, - with --no-headers
 * Generated nicknames never contain TAB, newline or backslash.
 *
 * Exit status: 0 when every message was delivered, 1 when any delivery failed or a
 * Kafka error stopped the run, 2 for bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "event.h"

#define MAX_GAME_ID  UINT64_C(9007199254740991) /* 2^53 - 1 */
#define MAX_PREFIX   30
#define MAX_ROSTER   100000u

/* ---------------------------------------------------------------- options */

typedef struct {
    const char *brokers;
    const char *users_topic;
    const char *scores_topic;
    const char *ledger;
    const char *prefix;
    uint64_t events;
    uint64_t games;
    uint64_t users;
    uint64_t invalid;
    uint64_t seed;
    uint64_t world_seed;
    bool world_seed_set;
    uint64_t game_base;
    double user_pct;
    double set_pct;
    double rate;
    double skew;
    bool headers;
    bool quiet;
    bool check;
} opts_t;

/* ------------------------------------------------------------------- PRNG */

/* xoshiro256** seeded through splitmix64: fast, good quality, and identical
 * on every platform, so a seed always yields the same stream. */
typedef struct {
    uint64_t s[4];
} rng_t;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static double rng_unit(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n > 0, without modulo bias. */
static uint64_t rng_below(rng_t *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = rng_next(r);
    while (x >= limit);
    return x % n;
}

/* Uniform in [lo, hi]. */
static int64_t rng_range(rng_t *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)rng_below(r, (uint64_t)(hi - lo) + 1);
}

static bool rng_pct(rng_t *r, double pct)
{
    return rng_unit(r) * 100.0 < pct;
}

/* ------------------------------------------------------------ Zipf-like law */

/* cdf[i] = sum_{j<=i} 1/(j+1)^s.  Sampling the first k ranks only uses the
 * prefix cdf[0..k), so one table serves games, users and every roster. */
typedef struct {
    double *cdf;
    size_t n;
} zipf_t;

static int zipf_init(zipf_t *z, size_t n, double s)
{
    z->n = n;
    z->cdf = malloc(n * sizeof *z->cdf);
    if (!z->cdf)
        return -1;
    double acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += 1.0 / pow((double)(i + 1), s);
        z->cdf[i] = acc;
    }
    return 0;
}

/* A rank in [0, k), 0 < k <= z->n, rank 0 the most likely. */
static size_t zipf_draw(const zipf_t *z, rng_t *r, size_t k)
{
    double u = rng_unit(r) * z->cdf[k - 1];
    size_t lo = 0, hi = k - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* --------------------------------------------------------- string builder */

typedef struct {
    char d[2048];
    size_t n;
    bool overflow;
} sbuf_t;

static void sb_reset(sbuf_t *b)
{
    b->n = 0;
    b->overflow = false;
    b->d[0] = '\0';
}

static void sb_raw(sbuf_t *b, const char *s, size_t n)
{
    if (n >= sizeof b->d - b->n) {
        b->overflow = true;
        return;
    }
    memcpy(b->d + b->n, s, n);
    b->n += n;
    b->d[b->n] = '\0';
}

static void sb_puts(sbuf_t *b, const char *s)
{
    sb_raw(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3)))
static void sb_fmt(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    size_t room = sizeof b->d - b->n;
    va_start(ap, fmt);
    int w = vsnprintf(b->d + b->n, room, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= room) {
        b->overflow = true;
        b->d[b->n] = '\0';
        return;
    }
    b->n += (size_t)w;
}

/* A JSON string literal for s (bytes copied as is; quotes, backslashes and
 * control characters escaped). */
static void sb_jstr(sbuf_t *b, const char *s)
{
    sb_raw(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = { '\\', (char)*p };
            sb_raw(b, e, 2);
        } else if (*p < 0x20) {
            sb_fmt(b, "\\u%04x", (unsigned)*p);
        } else {
            sb_raw(b, (const char *)p, 1);
        }
    }
    sb_raw(b, "\"", 1);
}

/* ------------------------------------------------------------- game model */

typedef struct {
    uint64_t id;
    uint32_t *players; /* user indexes (0-based), most active first */
    size_t n_players;
} game_t;

typedef struct {
    game_t *games;     /* by popularity rank */
    size_t n_games;
    size_t n_users;
    zipf_t zipf;
} model_t;

static size_t max_sz(size_t a, size_t b)
{
    return a > b ? a : b;
}

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

static void model_free(model_t *m)
{
    if (m->games)
        for (size_t i = 0; i < m->n_games; i++)
            free(m->games[i].players);
    free(m->games);
    free(m->zipf.cdf);
    memset(m, 0, sizeof *m);
}

/* Builds games (ids shuffled over popularity ranks) and their rosters.
 * Rank r gets about U/2 / (r+1)^skew players (at least 2), drawn with the
 * Zipf law over users (active users play many games), topped up uniformly
 * when the skewed draw keeps hitting the same few users. */
static int model_init(model_t *m, const opts_t *o, rng_t *r)
{
    memset(m, 0, sizeof *m);
    m->n_games = (size_t)o->games;
    m->n_users = (size_t)o->users;
    if (zipf_init(&m->zipf, max_sz(m->n_games, m->n_users), o->skew) != 0)
        return -1;
    m->games = calloc(m->n_games, sizeof *m->games);
    uint64_t *ids = malloc(m->n_games * sizeof *ids);
    uint32_t *mark = calloc(m->n_users, sizeof *mark);
    if (!m->games || !ids || !mark) {
        free(ids);
        free(mark);
        return -1;
    }
    for (size_t i = 0; i < m->n_games; i++)
        ids[i] = o->game_base + i;
    for (size_t i = m->n_games; i > 1; i--) { /* Fisher-Yates */
        size_t j = (size_t)rng_below(r, i);
        uint64_t t = ids[i - 1];
        ids[i - 1] = ids[j];
        ids[j] = t;
    }
    int rc = 0;
    for (size_t g = 0; g < m->n_games && rc == 0; g++) {
        game_t *gm = &m->games[g];
        gm->id = ids[g];
        double want = ceil((double)m->n_users * 0.5 / pow((double)(g + 1), o->skew));
        size_t k = want >= (double)m->n_users ? m->n_users : (size_t)want;
        k = min_sz(max_sz(k, min_sz(2, m->n_users)), MAX_ROSTER);
        gm->players = malloc(k * sizeof *gm->players);
        if (!gm->players) {
            rc = -1;
            break;
        }
        uint32_t stamp = (uint32_t)(g + 1);
        if (k == m->n_users) {
            for (size_t i = 0; i < k; i++)
                gm->players[i] = (uint32_t)i;
            gm->n_players = k;
            continue;
        }
        size_t tries = 4 * k + 16;
        while (gm->n_players < k && tries--) {
            size_t u = zipf_draw(&m->zipf, r, m->n_users);
            if (mark[u] != stamp) {
                mark[u] = stamp;
                gm->players[gm->n_players++] = (uint32_t)u;
            }
        }
        tries = 8 * k + 16;
        while (gm->n_players < k && tries--) {
            size_t u = (size_t)rng_below(r, m->n_users);
            if (mark[u] != stamp) {
                mark[u] = stamp;
                gm->players[gm->n_players++] = (uint32_t)u;
            }
        }
    }
    free(ids);
    free(mark);
    return rc;
}

/* ------------------------------------------------------------- event text */

static const char *const NICK_STEMS[] = {
    "Ace", "Brainiac", "Zoë", "O'Neil", "\"Lucky\" Luke", "José", "Quizzy McQuizface",
    "Łukasz", "さくら", "🦊 Fox", "Night Owl", "Dr. Trivia", "Ms. <b>Bold</b>",
    "Robert'); DROP TABLE users;--", "Ünïcødé", "Max", "Ελένη", "Смирнов",
};
static const char *const GAME_STEMS[] = {
    "Friday quiz", "Pub trivia", "Movie buffs", "Café quiz", "Science night",
    "History cup", "Geo \"masters\"", "Music round", "Sport & more", "Kids' quiz",
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

enum kind { K_USER, K_SCORE, K_INVALID };

enum inv {
    INV_WRONG_TYPE,
    INV_MISSING_FIELD,
    INV_OUT_OF_RANGE,
    INV_TOO_LONG,
    INV_INVALID_JSON,
    INV_INVALID_UTF8,
    INV_UNKNOWN_FIELD,
    INV_KEY_MISMATCH,
    INV_COUNT
};

static const char *const INV_CODE[INV_COUNT] = {
    "wrong_type", "missing_field", "out_of_range", "too_long",
    "invalid_json", "invalid_utf8", "unknown_field", "key_mismatch",
};

/* One generated event: payload, key, topic choice and ledger fields. */
typedef struct {
    enum kind kind;
    bool to_users;      /* users topic, else scores topic */
    sbuf_t key;
    sbuf_t val;
    uint64_t game_id;   /* 0: none */
    char username[128]; /* "" -> '-' in the ledger */
    const char *op;
    int64_t value;
    int nick_mode;      /* 0 absent, 1 null, 2 string */
    char nickname[96];
} event_t;

static void make_username(char *out, size_t cap, const opts_t *o, size_t idx)
{
    snprintf(out, cap, "%s%zu", o->prefix, idx + 1);
}

static void game_name(char *out, size_t cap, uint64_t gid)
{
    snprintf(out, cap, "%s #%" PRIu64, GAME_STEMS[gid % N_ELEMS(GAME_STEMS)], gid);
}

static void begin_obj(event_t *e, const opts_t *o, uint64_t seq)
{
    sb_reset(&e->val);
    sb_fmt(&e->val, "{\"event_id\":\"%s-%" PRIu64 "-%" PRIu64 "\"", o->prefix, o->seed, seq);
}

static void gen_user(event_t *e, const opts_t *o, const model_t *m, rng_t *r, uint64_t seq)
{
    e->kind = K_USER;
    e->to_users = true;
    e->op = "-";
    make_username(e->username, sizeof e->username, o, zipf_draw(&m->zipf, r, m->n_users));
    uint64_t pick = rng_below(r, 100);
    e->nick_mode = pick < 70 ? 2 : pick < 85 ? 1 : 0;
    begin_obj(e, o, seq);
    sb_puts(&e->val, ",\"username\":");
    sb_jstr(&e->val, e->username);
    if (e->nick_mode == 2) {
        snprintf(e->nickname, sizeof e->nickname, "%s %" PRIu64,
                 NICK_STEMS[rng_below(r, N_ELEMS(NICK_STEMS))], rng_below(r, 999) + 1);
        sb_puts(&e->val, ",\"nickname\":");
        sb_jstr(&e->val, e->nickname);
    } else if (e->nick_mode == 1) {
        sb_puts(&e->val, ",\"nickname\":null");
    }
    sb_puts(&e->val, "}");
    sb_reset(&e->key);
    sb_puts(&e->key, e->username);
}

static void gen_score(event_t *e, const opts_t *o, const model_t *m, rng_t *r, uint64_t seq)
{
    e->kind = K_SCORE;
    e->to_users = false;
    const game_t *g = &m->games[zipf_draw(&m->zipf, r, m->n_games)];
    e->game_id = g->id;
    make_username(e->username, sizeof e->username, o,
                  g->players[zipf_draw(&m->zipf, r, g->n_players)]);
    bool set = rng_pct(r, o->set_pct);
    e->op = set ? "set" : "delta";
    e->value = set ? rng_range(r, 0, 10000) : rng_range(r, -50, 500);
    begin_obj(e, o, seq);
    sb_fmt(&e->val, ",\"game_id\":%" PRIu64, e->game_id);
    if (rng_below(r, 100) < 20) {
        char gn[128];
        game_name(gn, sizeof gn, e->game_id);
        sb_puts(&e->val, ",\"game_name\":");
        sb_jstr(&e->val, gn);
    }
    sb_puts(&e->val, ",\"username\":");
    sb_jstr(&e->val, e->username);
    sb_fmt(&e->val, ",\"%s\":%" PRId64 "}", e->op, e->value);
    sb_reset(&e->key);
    sb_fmt(&e->key, "%" PRIu64, e->game_id);
}

/* A deliberately invalid event whose only (first) problem yields INV_CODE[k]. */
static void gen_invalid(event_t *e, const opts_t *o, const model_t *m, rng_t *r, uint64_t seq)
{
    enum inv k = (enum inv)rng_below(r, INV_COUNT);
    bool user = rng_below(r, 3) == 0 && k != INV_OUT_OF_RANGE; /* game ids are score-only */
    const game_t *g = &m->games[rng_below(r, m->n_games)];
    char uname[64];
    make_username(uname, sizeof uname, o, (size_t)rng_below(r, m->n_users));

    e->kind = K_INVALID;
    e->to_users = user;
    e->op = INV_CODE[k];
    e->game_id = user ? 0 : g->id;
    snprintf(e->username, sizeof e->username, "%s", uname);
    begin_obj(e, o, seq);
    sbuf_t *v = &e->val;
    if (!user)
        sb_fmt(v, ",\"game_id\":%" PRIu64, g->id);

    switch (k) {
    case INV_WRONG_TYPE:
        sb_puts(v, ",\"username\":");
        sb_jstr(v, uname);
        sb_puts(v, user ? ",\"nickname\":42}" : ",\"delta\":\"500\"}");
        break;
    case INV_MISSING_FIELD:
        e->username[0] = '\0';
        sb_puts(v, user ? ",\"nickname\":\"Nobody\"}" : ",\"delta\":10}");
        break;
    case INV_OUT_OF_RANGE: {
        uint64_t bad = rng_below(r, 2) ? 0 : MAX_GAME_ID + 1;
        e->game_id = bad;
        sb_reset(v);
        sb_fmt(v, "{\"event_id\":\"%s-%" PRIu64 "-%" PRIu64 "\",\"game_id\":%" PRIu64,
               o->prefix, o->seed, seq, bad);
        sb_puts(v, ",\"username\":");
        sb_jstr(v, uname);
        sb_puts(v, ",\"delta\":1}");
        break;
    }
    case INV_TOO_LONG: {
        size_t n = (size_t)snprintf(e->username, sizeof e->username, "%stoolong", o->prefix);
        size_t want = 51 + (size_t)rng_below(r, 10);
        while (n < want && n + 1 < sizeof e->username)
            e->username[n++] = 'z';
        e->username[n] = '\0';
        sb_puts(v, ",\"username\":");
        sb_jstr(v, e->username);
        sb_puts(v, user ? "}" : ",\"delta\":1}");
        break;
    }
    case INV_INVALID_JSON:
        sb_puts(v, ",\"username\":");
        sb_jstr(v, uname);
        /* trailing comma, or a leading zero */
        if (rng_below(r, 2))
            sb_puts(v, user ? ",}" : ",\"delta\":5,}");
        else
            sb_puts(v, user ? ",\"nickname\":\"x\"}}" : ",\"delta\":05}");
        break;
    case INV_INVALID_UTF8:
        e->username[0] = '\0';
        /* overlong NUL (C0 80) or a lone continuation byte inside the username */
        sb_fmt(v, ",\"username\":\"%s%s\"", uname, rng_below(r, 2) ? "\xC0\x80" : "\x80x");
        sb_puts(v, user ? "}" : ",\"delta\":1}");
        break;
    case INV_UNKNOWN_FIELD:
        sb_puts(v, ",\"username\":");
        sb_jstr(v, uname);
        sb_puts(v, user ? ",\"score\":1}" : ",\"delta\":1,\"bonus\":10}");
        break;
    case INV_KEY_MISMATCH:
    case INV_COUNT:
        sb_puts(v, ",\"username\":");
        sb_jstr(v, uname);
        sb_puts(v, user ? "}" : ",\"delta\":1}");
        break;
    }

    sb_reset(&e->key);
    if (k == INV_KEY_MISMATCH) {
        if (user)
            sb_fmt(&e->key, "X%s", uname);
        else if (rng_below(r, 2))
            sb_fmt(&e->key, "0%" PRIu64, g->id); /* not canonical */
        else
            sb_fmt(&e->key, "%" PRIu64, g->id + 1);
    } else if (user) {
        sb_puts(&e->key, e->username[0] ? e->username : uname);
    } else {
        sb_fmt(&e->key, "%" PRIu64, e->game_id);
    }
}

/* ------------------------------------------------------------------ kafka */

typedef struct {
    uint64_t ok;
    uint64_t failed;
} stats_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    stats_t *st = opaque;
    if (m->err) {
        if (st->failed < 10)
            fprintf(stderr, "loadgen: delivery failed: %s\n", rd_kafka_err2str(m->err));
        st->failed++;
    } else {
        st->ok++;
    }
}

static void err_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    fprintf(stderr, "loadgen: kafka error: %s: %s\n",
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static int conf_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[256];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "loadgen: %s=%s: %s\n", k, v, err);
        return -1;
    }
    return 0;
}

/* --------------------------------------------------------------- helpers */

static double now_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: loadgen [options]\n"
        "  -b, --brokers LIST        bootstrap servers (default 127.0.0.1:9092)\n"
        "      --users-topic T       topic for user events (default game.users)\n"
        "      --scores-topic T      topic for score events (default game.scores)\n"
        "  -n, --events N            total events, invalid ones included (default 10000)\n"
        "  -g, --games G             number of games (default 100)\n"
        "  -u, --users U             number of users (default 1000)\n"
        "      --user-events-pct P   share of valid events that are user events (default 5)\n"
        "      --set-pct P           share of score events using \"set\" (default 5)\n"
        "      --invalid N           invalid events mixed in at random positions (default 0)\n"
        "      --rate R              events per second, 0 = unlimited (default 0)\n"
        "      --seed S              PRNG seed; same seed = same stream (default 1)\n"
        "      --world-seed S        seed of the games' popularity and rosters (default:\n"
        "                            --seed); another --seed with the same --world-seed\n"
        "                            continues the same games with the same players\n"
        "      --ledger FILE         write one TAB-separated line per event (see source)\n"
        "      --skew S              Zipf exponent for game popularity, players per game\n"
        "                            and user activity; 0 = uniform (default 1.0)\n"
        "      --prefix STR          username/event-id prefix, [A-Za-z0-9._-]{1,%d} (default u)\n"
        "      --game-base N         first game id (default 1)\n"
        "  -H, --headers             send sk-sent-ns and correlation-id headers (default)\n"
        "      --no-headers          send no headers\n"
        "  -X, --property K=V        extra librdkafka producer property (repeatable)\n"
        "      --check               run every event through the daemon's own parser\n"
        "                            (sk_event_parse) and stop if its verdict differs\n"
        "                            from the ledger's expectation\n"
        "  -q, --quiet               no summary line\n"
        "  -h, --help                this text\n"
        "Ledger columns: seq topic kind game_id username op value nickname correlation-id\n"
        "Exit: 0 all delivered, 1 delivery/Kafka failure, 2 usage error.\n",
        MAX_PREFIX);
}

static int parse_u64(const char *s, uint64_t *out, const char *what)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-') {
        fprintf(stderr, "loadgen: %s: not a non-negative integer: %s\n", what, s);
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) {
        fprintf(stderr, "loadgen: %s: not a non-negative integer: %s\n", what, s);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

static int parse_dbl(const char *s, double *out, double lo, double hi, const char *what)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !*s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "loadgen: %s: expected a number in [%g, %g]: %s\n", what, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static bool prefix_ok(const char *p)
{
    size_t n = strlen(p);
    if (n < 1 || n > MAX_PREFIX)
        return false;
    return strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

enum {
    OPT_USERS_TOPIC = 256, OPT_SCORES_TOPIC, OPT_USER_PCT, OPT_SET_PCT, OPT_INVALID,
    OPT_RATE, OPT_SEED, OPT_WORLD_SEED, OPT_LEDGER, OPT_SKEW, OPT_PREFIX, OPT_GAME_BASE, OPT_NO_HEADERS, OPT_CHECK,
};

static const struct option LONGOPTS[] = {
    { "brokers", required_argument, NULL, 'b' },
    { "users-topic", required_argument, NULL, OPT_USERS_TOPIC },
    { "scores-topic", required_argument, NULL, OPT_SCORES_TOPIC },
    { "events", required_argument, NULL, 'n' },
    { "games", required_argument, NULL, 'g' },
    { "users", required_argument, NULL, 'u' },
    { "user-events-pct", required_argument, NULL, OPT_USER_PCT },
    { "set-pct", required_argument, NULL, OPT_SET_PCT },
    { "invalid", required_argument, NULL, OPT_INVALID },
    { "rate", required_argument, NULL, OPT_RATE },
    { "seed", required_argument, NULL, OPT_SEED },
    { "world-seed", required_argument, NULL, OPT_WORLD_SEED },
    { "ledger", required_argument, NULL, OPT_LEDGER },
    { "skew", required_argument, NULL, OPT_SKEW },
    { "prefix", required_argument, NULL, OPT_PREFIX },
    { "game-base", required_argument, NULL, OPT_GAME_BASE },
    { "headers", no_argument, NULL, 'H' },
    { "no-headers", no_argument, NULL, OPT_NO_HEADERS },
    { "property", required_argument, NULL, 'X' },
    { "quiet", no_argument, NULL, 'q' },
    { "check", no_argument, NULL, OPT_CHECK },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* ------------------------------------------------------------------- main */

/* --check: the daemon's parser must agree with what the ledger promises. */
static int self_check(const event_t *e, uint64_t seq)
{
    struct sk_event ev;
    struct sk_parse_error perr;
    enum sk_reject got = sk_event_parse(e->to_users ? SK_EV_USER : SK_EV_SCORE, e->val.d,
                                        e->val.n, e->key.d, e->key.n, NULL, &ev, &perr);
    const char *want = e->kind == K_INVALID ? e->op : "ok";
    const char *have = got == SK_OK ? "ok" : sk_reject_code(got);
    bool same = strcmp(want, have) == 0;
    if (got == SK_OK) {
        if (e->kind == K_SCORE)
            same = same && ev.game_id == (int64_t)e->game_id && ev.value == e->value &&
                   (ev.op == SK_OP_SET) == (strcmp(e->op, "set") == 0);
        else
            same = same && (int)ev.nick == e->nick_mode &&
                   (ev.nick != SK_NICK_SET || strcmp(ev.nickname, e->nickname) == 0);
        same = same && strcmp(ev.username, e->username) == 0;
        sk_event_clear(&ev);
    }
    if (!same) {
        fprintf(stderr, "loadgen: --check: event %" PRIu64 " expected %s, parser says %s (%s)\n"
                "  key=%s payload=%s\n", seq, want, have, got == SK_OK ? "" : perr.message,
                e->key.d, e->val.d);
        return -1;
    }
    return 0;
}

typedef struct {
    rd_kafka_t *rk;
    rd_kafka_topic_t *t_users;
    rd_kafka_topic_t *t_scores;
    stats_t st;
} kafka_t;

/* Enqueue one message; waits (serving delivery reports) while the local
 * queue is full.  Returns 0 or -1 on a non-retriable error. */
static int produce(kafka_t *k, const opts_t *o, event_t *e, uint64_t seq)
{
    rd_kafka_headers_t *h = NULL;
    if (o->headers) {
        char ns[32], cid[48];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int nl = snprintf(ns, sizeof ns, "%" PRIu64,
                          (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec);
        int cl = snprintf(cid, sizeof cid, "%" PRIu64 "-%" PRIu64, o->seed, seq);
        h = rd_kafka_headers_new(2);
        rd_kafka_header_add(h, "sk-sent-ns", -1, ns, nl);
        rd_kafka_header_add(h, "correlation-id", -1, cid, cl);
    }
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            k->rk, RD_KAFKA_V_RKT(e->to_users ? k->t_users : k->t_scores),
            RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_KEY(e->key.d, e->key.n), RD_KAFKA_V_VALUE(e->val.d, e->val.n),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "loadgen: produce: %s\n", rd_kafka_err2str(err));
            if (h)
                rd_kafka_headers_destroy(h);
            return -1;
        }
        rd_kafka_poll(k->rk, 20);
    }
}

static void ledger_line(FILE *f, const opts_t *o, const event_t *e, uint64_t seq)
{
    const char *topic = e->to_users ? o->users_topic : o->scores_topic;
    static const char *const KIND[] = { "user", "score", "invalid" };
    fprintf(f, "%" PRIu64 "\t%s\t%s\t", seq, topic, KIND[e->kind]);
    if (e->kind == K_USER || (e->kind == K_INVALID && e->to_users))
        fputs("-", f);
    else
        fprintf(f, "%" PRIu64, e->game_id);
    fprintf(f, "\t%s\t%s\t", e->username[0] ? e->username : "-", e->op);
    if (e->kind == K_SCORE)
        fprintf(f, "%" PRId64, e->value);
    else
        fputs("-", f);
    fputc('\t', f);
    if (e->kind == K_USER)
        fputs(e->nick_mode == 2 ? e->nickname : e->nick_mode == 1 ? "\\N" : "", f);
    else
        fputs("-", f);
    if (o->headers)
        fprintf(f, "\t%" PRIu64 "-%" PRIu64 "\n", o->seed, seq);
    else
        fputs("\t-\n", f);
}

static int parse_args(int argc, char **argv, opts_t *o, rd_kafka_conf_t *conf)
{
    *o = (opts_t){
        .brokers = "127.0.0.1:9092", .users_topic = "game.users",
        .scores_topic = "game.scores", .prefix = "u", .events = 10000, .games = 100,
        .users = 1000, .seed = 1, .game_base = 1, .user_pct = 5, .set_pct = 5,
        .skew = 1.0, .headers = true,
    };
    int c;
    while ((c = getopt_long(argc, argv, "b:n:g:u:HX:qh", LONGOPTS, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'b': o->brokers = optarg; break;
        case OPT_USERS_TOPIC: o->users_topic = optarg; break;
        case OPT_SCORES_TOPIC: o->scores_topic = optarg; break;
        case 'n': rc = parse_u64(optarg, &o->events, "--events"); break;
        case 'g': rc = parse_u64(optarg, &o->games, "--games"); break;
        case 'u': rc = parse_u64(optarg, &o->users, "--users"); break;
        case OPT_USER_PCT: rc = parse_dbl(optarg, &o->user_pct, 0, 100, "--user-events-pct"); break;
        case OPT_SET_PCT: rc = parse_dbl(optarg, &o->set_pct, 0, 100, "--set-pct"); break;
        case OPT_INVALID: rc = parse_u64(optarg, &o->invalid, "--invalid"); break;
        case OPT_RATE: rc = parse_dbl(optarg, &o->rate, 0, 1e9, "--rate"); break;
        case OPT_SEED: rc = parse_u64(optarg, &o->seed, "--seed"); break;
        case OPT_WORLD_SEED:
            rc = parse_u64(optarg, &o->world_seed, "--world-seed");
            o->world_seed_set = true;
            break;
        case OPT_LEDGER: o->ledger = optarg; break;
        case OPT_SKEW: rc = parse_dbl(optarg, &o->skew, 0, 10, "--skew"); break;
        case OPT_PREFIX: o->prefix = optarg; break;
        case OPT_GAME_BASE: rc = parse_u64(optarg, &o->game_base, "--game-base"); break;
        case 'H': o->headers = true; break;
        case OPT_NO_HEADERS: o->headers = false; break;
        case 'X': {
            char *eq = strchr(optarg, '=');
            if (!eq) {
                fprintf(stderr, "loadgen: -X expects KEY=VALUE: %s\n", optarg);
                return -1;
            }
            *eq = '\0';
            rc = conf_set(conf, optarg, eq + 1);
            *eq = '=';
            break;
        }
        case 'q': o->quiet = true; break;
        case OPT_CHECK: o->check = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
        if (rc)
            return -1;
    }
    if (optind != argc) {
        fprintf(stderr, "loadgen: unexpected argument: %s\n", argv[optind]);
        return -1;
    }
    if (!prefix_ok(o->prefix)) {
        fprintf(stderr, "loadgen: --prefix must match [A-Za-z0-9._-]{1,%d}\n", MAX_PREFIX);
        return -1;
    }
    if (o->games < 1 || o->users < 1 || o->users > UINT32_MAX / 2 || o->games > (1u << 26)) {
        fprintf(stderr, "loadgen: need 1 <= games <= 2^26 and 1 <= users <= 2^31\n");
        return -1;
    }
    if (o->game_base < 1 || o->game_base > MAX_GAME_ID - o->games + 1) {
        fprintf(stderr, "loadgen: game ids must stay within 1..2^53-1\n");
        return -1;
    }
    if (o->invalid > o->events) {
        fprintf(stderr, "loadgen: --invalid exceeds --events\n");
        return -1;
    }
    /* 500 per event at most: the largest total is far from BIGINT for any N below 2^53 */
    if (o->events > MAX_GAME_ID) {
        fprintf(stderr, "loadgen: too many events\n");
        return -1;
    }
    return 0;
}

/* Marks o->invalid distinct positions in [0, events) (Floyd's algorithm). */
static uint8_t *pick_invalid(const opts_t *o, rng_t *r)
{
    size_t n = (size_t)o->events;
    uint8_t *bits = calloc(n / 8 + 1, 1);
    if (!bits)
        return NULL;
    for (uint64_t j = o->events - o->invalid; j < o->events; j++) {
        uint64_t t = rng_below(r, j + 1);
        if (bits[t / 8] & (1u << (t % 8)))
            t = j;
        bits[t / 8] = (uint8_t)(bits[t / 8] | (1u << (t % 8)));
    }
    return bits;
}

int main(int argc, char **argv)
{
    char err[512];
    opts_t o;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "enable.idempotence", "true") || conf_set(conf, "linger.ms", "20") ||
        conf_set(conf, "batch.num.messages", "10000") || conf_set(conf, "batch.size", "1000000") ||
        conf_set(conf, "compression.codec", "lz4") ||
        conf_set(conf, "queue.buffering.max.messages", "1000000") ||
        conf_set(conf, "queue.buffering.max.kbytes", "1048576") ||
        conf_set(conf, "message.timeout.ms", "120000") ||
        conf_set(conf, "client.id", "scorekeeper-loadgen"))
        return 1;
    if (parse_args(argc, argv, &o, conf) != 0) {
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    if (conf_set(conf, "bootstrap.servers", o.brokers)) {
        rd_kafka_conf_destroy(conf);
        return 2;
    }

    /* Separate streams so the model (rosters) does not depend on -n etc. */
    rng_t r_model, r_pos, r_ev;
    rng_seed(&r_model, (o.world_seed_set ? o.world_seed : o.seed) ^ UINT64_C(0x6d6f64656c));
    rng_seed(&r_pos, o.seed ^ UINT64_C(0x706f73));
    rng_seed(&r_ev, o.seed);

    model_t m;
    if (model_init(&m, &o, &r_model) != 0) {
        fprintf(stderr, "loadgen: out of memory building the game model\n");
        model_free(&m);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    uint8_t *inv = pick_invalid(&o, &r_pos);
    FILE *lf = NULL;
    if (o.ledger) {
        lf = fopen(o.ledger, "we");
        if (!lf)
            fprintf(stderr, "loadgen: %s: %s\n", o.ledger, strerror(errno));
        else
            setvbuf(lf, NULL, _IOFBF, 1 << 20);
    }
    if (!inv || (o.ledger && !lf)) {
        free(inv);
        model_free(&m);
        rd_kafka_conf_destroy(conf);
        return 1;
    }

    kafka_t k = { 0 };
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, err_cb);
    rd_kafka_conf_set_opaque(conf, &k.st);
    k.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!k.rk) {
        fprintf(stderr, "loadgen: rd_kafka_new: %s\n", err);
        rd_kafka_conf_destroy(conf);
        free(inv);
        model_free(&m);
        if (lf)
            fclose(lf);
        return 1;
    }
    k.t_users = rd_kafka_topic_new(k.rk, o.users_topic, NULL);
    k.t_scores = rd_kafka_topic_new(k.rk, o.scores_topic, NULL);
    /* Connected before the first send is stamped: a game server's producer
     * is long-lived, so a run's first events should not wait for the
     * connection (the first 50 ms of a run at 50,000 events/s had a median
     * of 67 ms against 22 later, of which this is one part). */
    const rd_kafka_metadata_t *md;
    for (int t = 0; t < 2 && k.t_users && k.t_scores; t++) {
        rd_kafka_resp_err_t me = rd_kafka_metadata(k.rk, 0, t ? k.t_scores : k.t_users, &md, 10000);
        if (me) {
            fprintf(stderr, "loadgen: no metadata for %s within 10 s: %s\n",
                    t ? o.scores_topic : o.users_topic, rd_kafka_err2str(me));
            break;
        }
        rd_kafka_metadata_destroy(md);
    }

    uint64_t n_user = 0, n_score = 0, n_inv = 0;
    int rc = 0;
    double t0 = now_s(CLOCK_MONOTONIC);
    double tokens = 0, burst = o.rate > 0 ? fmax(1.0, o.rate / 100.0) : 0, last = t0;
    event_t *e = malloc(sizeof *e);
    if (!e || !k.t_users || !k.t_scores)
        rc = 1;

    for (uint64_t i = 0; rc == 0 && i < o.events; i++) {
        uint64_t seq = i + 1;
        e->game_id = 0;
        e->username[0] = '\0';
        e->op = "-";
        e->value = 0;
        e->nick_mode = 0;
        e->nickname[0] = '\0';
        if (inv[i / 8] & (1u << (i % 8))) {
            gen_invalid(e, &o, &m, &r_ev, seq);
            n_inv++;
        } else if (rng_pct(&r_ev, o.user_pct)) {
            gen_user(e, &o, &m, &r_ev, seq);
            n_user++;
        } else {
            gen_score(e, &o, &m, &r_ev, seq);
            n_score++;
        }
        if (e->key.overflow || e->val.overflow) {
            fprintf(stderr, "loadgen: internal error: event %" PRIu64 " too large\n", seq);
            rc = 1;
            break;
        }
        if (o.check && self_check(e, seq) != 0) {
            rc = 1;
            break;
        }
        if (o.rate > 0) { /* token bucket */
            while (tokens < 1.0) {
                double now = now_s(CLOCK_MONOTONIC);
                tokens = fmin(burst, tokens + (now - last) * o.rate);
                last = now;
                if (tokens < 1.0) {
                    /* at least 1 ms: sleeping per event cost a third of
                     * a core at 50,000 events/s, on the machine that
                     * also runs what the benchmark measures */
                    rd_kafka_poll(k.rk, 0);
                    sleep_s(fmax(1e-3, (1.0 - tokens) / o.rate));
                }
            }
            tokens -= 1.0;
        }
        if (produce(&k, &o, e, seq) != 0) {
            rc = 1;
            break;
        }
        if (lf)
            ledger_line(lf, &o, e, seq);
        if ((i & 1023) == 0)
            rd_kafka_poll(k.rk, 0);
    }

    while (rd_kafka_outq_len(k.rk) > 0)
        rd_kafka_flush(k.rk, 1000);
    double secs = now_s(CLOCK_MONOTONIC) - t0;

    if (rd_kafka_fatal_error(k.rk, err, sizeof err)) {
        fprintf(stderr, "loadgen: fatal producer error: %s\n", err);
        rc = 1;
    }
    uint64_t total = n_user + n_score + n_inv;
    if (k.st.failed || k.st.ok != total) {
        fprintf(stderr, "loadgen: %" PRIu64 " of %" PRIu64 " deliveries failed\n",
                total - k.st.ok, total);
        rc = 1;
    }
    if (lf) {
        bool bad = ferror(lf) != 0;
        bad = (fclose(lf) != 0) || bad;
        lf = NULL;
        if (bad) {
            fprintf(stderr, "loadgen: writing %s failed\n", o.ledger);
            rc = 1;
        }
    }
    if (!o.quiet)
        fprintf(stderr,
                "loadgen: %s %" PRIu64 " events (user %" PRIu64 ", score %" PRIu64
                ", invalid %" PRIu64 ") in %.3f s, %.0f events/s%s\n",
                rc ? "attempted" : "produced", total, n_user, n_score, n_inv, secs,
                secs > 0 ? (double)total / secs : 0.0, rc ? " — FAILED" : "");

    free(e);
    if (k.t_users)
        rd_kafka_topic_destroy(k.t_users);
    if (k.t_scores)
        rd_kafka_topic_destroy(k.t_scores);
    rd_kafka_destroy(k.rk);
    free(inv);
    model_free(&m);
    return rc;
}
