/* Unit tests: batch SQL and the fold of events (apply). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apply.h"
#include "known.h"
#include "marks.h"
#include "txnpolicy.h"

/* What the transaction module makes of a failure on the one-trip path. */
static const char *read_first(const struct sk_apply *a, unsigned code, unsigned stmt)
{
    if (!sk_apply_one_trip(a))
        return NULL;
    return sk_policy_one_trip_guard(code, (int)stmt == sk_apply_mark_check_stmt(a));
}

/* The creation of a user the map does not know: only when one of its
 * events may apply (at or above its game's mark), a row of (user,
 * partition, game, offset) per user and game joined once to the marks. */
#define CREATE_USERS "INSERT IGNORE INTO users (username) SELECT v.u FROM (SELECT "
#define FIRST_ROW(user, game, off) user " AS u, 3 AS p, " game " AS g, " off " AS o"
#define MORE_ROWS " UNION ALL VALUES "
#define MAY_APPLY                                                                                  \
    ") AS v LEFT JOIN game_offsets m ON m.topic = 'game.scores' AND m.`partition` = v.p AND "   \
    "m.game_id = v.g AND m.next_offset > v.o WHERE m.game_id IS NULL"

static struct sk_part part3 = {.topic = (char *)"game.scores", .partition = 3, .kind = SK_EV_SCORE};

/* Statement numbers: the SELECT of unknown users' players is the last
 * statement of the first round trip, the offsets SELECT the one before. */
static unsigned last_stmt;
static void count_stmts(const struct sk_buf *sql)
{
    last_stmt = 0;
    for (const char *p = sql->p; (p = strstr(p, ";\n")); p += 2)
        last_stmt++;
}

static int first(struct sk_apply *a, struct sk_buf *sql, struct sk_known *known)
{
    int r = sk_apply_first(a, sql, known);
    count_stmts(sql);
    return r;
}

static struct sk_msg *score(int64_t off, const char *user, enum sk_op op, int64_t v, const char *gname)
{
    struct sk_msg *m = sk_msg_new(NULL, off);
    m->part = &part3; /* not ref-counted here: freed as NULL below */
    m->ev.kind = SK_EV_SCORE;
    m->ev.username = user;
    m->ev.username_len = strlen(user);
    m->ev.game_id = 42;
    m->ev.op = op;
    m->ev.value = v;
    if (gname) {
        m->ev.game_name = gname;
        m->ev.game_name_len = strlen(gname);
    }
    return m;
}

static struct sk_msg *user(int64_t off, const char *name, enum sk_nick nick, const char *nn)
{
    struct sk_msg *m = sk_msg_new(NULL, off);
    m->part = &part3;
    m->ev.kind = SK_EV_USER;
    m->ev.username = name;
    m->ev.username_len = strlen(name);
    m->ev.nick = nick;
    if (nn) {
        m->ev.nickname = nn;
        m->ev.nickname_len = strlen(nn);
    }
    return m;
}

static struct sk_batch *batch(int64_t key, struct sk_msg **ms, unsigned n)
{
    struct sk_batch *b = calloc(1, sizeof *b);
    b->key = key;
    b->n = n;
    b->head = ms[0];
    for (unsigned i = 0; i + 1 < n; i++)
        ms[i]->next = ms[i + 1];
    return b;
}

static void free_batch(struct sk_batch *b)
{
    while (b->head) {
        struct sk_msg *m = b->head;
        b->head = m->next;
        m->part = NULL;
        sk_msg_free(m);
    }
    free(b);
}

/* a players row: id, username, game_id (NULL: no row yet), score */
static void grow(struct sk_apply *a, const char *id, const char *name, const char *game, const char *sc)
{
    char *r[4] = {(char *)(uintptr_t)id, (char *)(uintptr_t)name, (char *)(uintptr_t)game,
                  (char *)(uintptr_t)sc};
    unsigned long len[4] = {strlen(id), strlen(name), game ? strlen(game) : 0, sc ? strlen(sc) : 0};
    sk_apply_row(a, last_stmt, r, len, 4);
}

static void row(struct sk_apply *a, const char *id, const char *name, const char *sc)
{
    grow(a, id, name, sc ? "42" : NULL, sc);
}

static void offsets_row(struct sk_apply *a, const char *part, const char *next)
{
    char *r[3] = {(char *)(uintptr_t)part, (char *)(uintptr_t)"42", (char *)(uintptr_t)next};
    unsigned long len[3] = {strlen(part), 2, strlen(next)};
    sk_apply_row(a, last_stmt - 1, r, len, 3);
}

static void score_fold(void **state)
{
    (void)state;
    struct sk_msg *ms[] = {
        score(1, "alice", SK_OP_DELTA, 10, NULL),     score(2, "bob", SK_OP_SET, 5, "Quiz"),
        score(3, "alice", SK_OP_DELTA, 10, NULL),     score(4, "alice", SK_OP_SET, 100, NULL),
        score(5, "alice", SK_OP_DELTA, 1, "Quiz 2"),  score(6, "o'hara\\", SK_OP_DELTA, -3, NULL),
    };
    struct sk_batch *b = batch(42, ms, 6);
    struct sk_apply *a = sk_apply_new(&b, 1);
    struct sk_buf sql;
    sk_buf_init(&sql);
    assert_int_equal(first(a, &sql, NULL), 0);
    const char *q = sk_buf_cstr(&sql);
    /* users created in byte order, names escaped, last game name wins */
    assert_non_null(strstr(q, CREATE_USERS FIRST_ROW("'alice'", "42", "5") MORE_ROWS "('bob',3,42,2),('o\\'hara\\\\',3,42,6)" MAY_APPLY ";\n"));
    assert_non_null(strstr(q, "START TRANSACTION;\nINSERT INTO games (id, name) VALUES (42,'Quiz 2') ON DUPLICATE KEY UPDATE"));
    /* users are created before the transaction, not inside it */
    assert_true(strstr(q, "INSERT IGNORE INTO users") < strstr(q, "START TRANSACTION"));
    /* alice's current score is near the top of BIGINT: +10 overflows */
    row(a, "7", "alice", "9223372036854775800");
    row(a, "3", "bob", NULL);
    row(a, "9", "o'hara\\", "4");
    char err[200];
    assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 1);
    q = sk_buf_cstr(&sql);
    assert_string_equal(q, "INSERT INTO game_players (game_id, user_id, score) VALUES "
                           "(42,3,5),(42,7,101),(42,9,1) ON DUPLICATE KEY UPDATE score = "
                           "VALUES(score);\nINSERT INTO game_offsets (topic, `partition`, game_id, "
                           "next_offset) VALUES ('game.scores',3,42,7) ON DUPLICATE KEY UPDATE "
                           "next_offset = GREATEST(next_offset, VALUES(next_offset));\nCOMMIT");
    sk_apply_outcome(a);
    assert_int_equal(ms[0]->status, SK_ST_REJECTED);
    assert_int_equal(ms[0]->reject, SK_E_SCORE_OVERFLOW);
    assert_int_equal(ms[1]->score, 5);
    assert_int_equal(ms[1]->user_id, 3);
    assert_int_equal(ms[2]->status, SK_ST_REJECTED);
    assert_int_equal(ms[3]->score, 100);
    assert_int_equal(ms[4]->score, 101);
    assert_int_equal(ms[4]->status, SK_ST_APPLIED);
    assert_int_equal(ms[5]->score, 1);
    /* a retry starts from scratch */
    assert_int_equal(first(a, &sql, NULL), 0);
    row(a, "7", "alice", "0");
    row(a, "3", "bob", "1");
    row(a, "9", "o'hara\\", NULL);
    assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 1);
    assert_int_equal(ms[0]->status, SK_ST_APPLIED);
    assert_int_equal(ms[0]->score, 10);
    assert_int_equal(ms[2]->score, 20);
    assert_int_equal(ms[5]->score, -3);
    sk_buf_free(&sql);
    sk_apply_free(a);
    free_batch(b);
}

/* Offsets of one partition and game in one transaction strictly increase:
 * an old copy of an event consumed again beside the new one would apply
 * twice.  Building such a transaction aborts (the invariant is the
 * scheduler's and the transaction module's to keep). */
static void repeated_offset_aborts(void **state)
{
    (void)state;
    for (int order = 0; order < 2; order++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 2); /* the log line is the point, not the noise */
            struct sk_msg *ms[] = {score(order ? 7 : 5, "u1", SK_OP_DELTA, 1, NULL),
                                   score(5, "u2", SK_OP_DELTA, 1, NULL)};
            struct sk_batch *b = batch(42, ms, 2);
            sk_apply_new(&b, 1);
            _exit(0);
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
            fail_msg("offsets %s: the child %s", order ? "7, 5" : "5, 5",
                     WIFSIGNALED(st) ? "died by another signal" : "did not abort");
    }
    /* increasing offsets build */
    struct sk_msg *ms[] = {score(5, "u1", SK_OP_DELTA, 1, NULL), score(6, "u2", SK_OP_DELTA, 1, NULL)};
    struct sk_batch *b = batch(42, ms, 2);
    struct sk_apply *a = sk_apply_new(&b, 1);
    assert_non_null(a);
    sk_apply_free(a);
    free_batch(b);
}

static void score_missing_user_is_an_error(void **state)
{
    (void)state;
    struct sk_msg *ms[] = {score(1, "alice", SK_OP_DELTA, 1, NULL), score(2, "zed", SK_OP_DELTA, 1, NULL)};
    struct sk_batch *b = batch(42, ms, 2);
    struct sk_apply *a = sk_apply_new(&b, 1);
    struct sk_buf sql;
    sk_buf_init(&sql);
    first(a, &sql, NULL);
    row(a, "1", "alice", NULL);
    char err[200];
    assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), -EPROTO);
    assert_non_null(strstr(err, "zed"));
    sk_buf_free(&sql);
    sk_apply_free(a);
    free_batch(b);
}

static void unnamed_game(void **state)
{
    (void)state;
    struct sk_msg *ms[] = {score(1, "a", SK_OP_DELTA, 1, NULL)};
    struct sk_batch *b = batch(42, ms, 1);
    struct sk_apply *a = sk_apply_new(&b, 1);
    struct sk_buf sql;
    sk_buf_init(&sql);
    first(a, &sql, NULL);
    assert_non_null(strstr(sk_buf_cstr(&sql), "INSERT INTO games (id, name) VALUES (42,'unnamed game 42') ON DUPLICATE KEY UPDATE id = id"));
    sk_buf_free(&sql);
    sk_apply_free(a);
    free_batch(b);
}

/* Events below the game's applied offset are duplicates: reported with
 * the current total, never applied again; the rest apply on top. */
static void duplicates_are_not_applied(void **state)
{
    (void)state;
    struct sk_msg *ms[] = {score(10, "alice", SK_OP_DELTA, 5, NULL), score(11, "alice", SK_OP_DELTA, 7, NULL),
                           score(12, "alice", SK_OP_DELTA, 100, NULL)};
    struct sk_batch *b = batch(42, ms, 3);
    struct sk_apply *a = sk_apply_new(&b, 1);
    struct sk_buf sql;
    sk_buf_init(&sql);
    first(a, &sql, NULL);
    assert_non_null(strstr(sk_buf_cstr(&sql), "SELECT `partition`, game_id, next_offset FROM game_offsets WHERE topic = 'game.scores' AND (`partition`, game_id) IN ((3,42))"));
    offsets_row(a, "3", "12");
    row(a, "1", "alice", "12");
    char err[100];
    assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 1);
    assert_int_equal(ms[0]->status, SK_ST_DUPLICATE);
    assert_int_equal(ms[0]->score, 12);
    assert_int_equal(ms[1]->status, SK_ST_DUPLICATE);
    assert_int_equal(ms[2]->status, SK_ST_APPLIED);
    assert_int_equal(ms[2]->score, 112);
    assert_non_null(strstr(sk_buf_cstr(&sql), "VALUES (42,1,112)"));
    assert_non_null(strstr(sk_buf_cstr(&sql), "('game.scores',3,42,13)"));
    /* all duplicates: no score row is written, the mark is kept */
    assert_int_equal(first(a, &sql, NULL), 0);
    offsets_row(a, "3", "13");
    row(a, "1", "alice", "112");
    assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 1);
    assert_null(strstr(sk_buf_cstr(&sql), "game_players"));
    assert_int_equal(ms[2]->status, SK_ST_DUPLICATE);
    assert_int_equal(ms[2]->score, 112);
    /* a user deleted since (a tombstone): its duplicates did not create it
     * again; they change nothing, with no user and a total of 0 */
    assert_int_equal(first(a, &sql, NULL), 0);
    offsets_row(a, "3", "13");
    assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 1);
    assert_null(strstr(sk_buf_cstr(&sql), "game_players"));
    sk_apply_outcome(a);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ms[i]->status, SK_ST_DUPLICATE);
        assert_int_equal(ms[i]->user_id, 0);
        assert_int_equal(ms[i]->score, 0);
    }
    /* one event at or above the mark: the user must be there */
    assert_int_equal(first(a, &sql, NULL), 0);
    offsets_row(a, "3", "12");
    assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), -EPROTO);
    sk_buf_free(&sql);
    sk_apply_free(a);
    free_batch(b);
}

/* Two games in one transaction: one commit, each game folded apart. */
static void two_games_share_a_transaction(void **state)
{
    (void)state;
    struct sk_msg *g1[] = {score(1, "bob", SK_OP_DELTA, 5, "One"), score(3, "amy", SK_OP_DELTA, 1, NULL)};
    struct sk_msg *g2[] = {score(2, "bob", SK_OP_SET, 50, NULL), score(4, "bob", SK_OP_DELTA, 1, NULL)};
    for (int i = 0; i < 2; i++)
        g2[i]->ev.game_id = 7;
    struct sk_batch *bs[] = {batch(42, g1, 2), batch(7, g2, 2)};
    struct sk_apply *a = sk_apply_new(bs, 2);
    struct sk_buf sql;
    sk_buf_init(&sql);
    assert_int_equal(first(a, &sql, NULL), 0);
    const char *q = sk_buf_cstr(&sql);
    assert_non_null(strstr(q, CREATE_USERS FIRST_ROW("'amy'", "42", "3") MORE_ROWS "('bob',3,7,4),('bob',3,42,1)" MAY_APPLY
                              ";\nSTART TRANSACTION"));
    assert_non_null(strstr(q, "SET STATEMENT innodb_lock_wait_timeout = 1 FOR INSERT INTO games (id, name) VALUES (42,'One') ON DUPLICATE KEY UPDATE name = VALUES(name)"));
    assert_non_null(strstr(q, "INSERT INTO games (id, name) VALUES (7,'unnamed game 7') ON DUPLICATE KEY UPDATE id = id"));
    assert_non_null(strstr(q, "IN ((3,7),(3,42))"));
    assert_non_null(strstr(q, "gp.game_id IN (7,42) WHERE u.username IN ('amy','bob')"));
    grow(a, "2", "bob", "42", "10");
    grow(a, "2", "bob", "7", "3");
    grow(a, "1", "amy", NULL, NULL);
    char err[100];
    assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 1);
    assert_int_equal(g1[0]->score, 15);
    assert_int_equal(g1[1]->score, 1);
    assert_int_equal(g2[0]->score, 50);
    assert_int_equal(g2[1]->score, 51);
    /* shared transaction: lock waits are short, so a game locked from
     * outside does not hold the other game hostage */
    assert_string_equal(sk_buf_cstr(&sql),
                        "SET STATEMENT innodb_lock_wait_timeout = 1 FOR "
                        "INSERT INTO game_players (game_id, user_id, score) VALUES (7,2,51),(42,1,1),"
                        "(42,2,15) ON DUPLICATE KEY UPDATE score = VALUES(score);\nINSERT INTO "
                        "game_offsets (topic, `partition`, game_id, next_offset) VALUES "
                        "('game.scores',3,7,5),('game.scores',3,42,4) ON DUPLICATE KEY UPDATE "
                        "next_offset = GREATEST(next_offset, VALUES(next_offset));\nCOMMIT");
    sk_apply_outcome(a);
    assert_int_equal(g1[1]->user_id, 1);
    assert_int_equal(g2[1]->user_id, 2);
    sk_buf_free(&sql);
    sk_apply_free(a);
    free_batch(bs[0]);
    free_batch(bs[1]);
}

/* The users the tests below know: alice, id 7. */
static struct sk_known *knows_alice(void)
{
    struct sk_known *k = sk_known_new(10);
    sk_known_add(k, "alice", 5, 7);
    return k;
}

/* Users are sorted by the bytes of their names (the order every
 * transaction locks users rows in) also when names share their first 8
 * bytes, are shorter than 8 or not ASCII; and the numbers of result rows
 * are read exactly, from INT64_MIN to INT64_MAX, a malformed or
 * overflowing one ignored. */
static void names_in_byte_order_numbers_exact(void **state)
{
    (void)state;
    struct sk_msg *ms[] = {
        score(1, "abcdefghX", SK_OP_DELTA, 1, NULL), score(2, "b", SK_OP_DELTA, 1, NULL),
        score(3, "abcdefgh\xc3\xa9", SK_OP_DELTA, 1, NULL), score(4, "abcdefgh", SK_OP_DELTA, 1, NULL),
        score(5, "abc", SK_OP_DELTA, 1, NULL), score(6, "abcdefghA", SK_OP_DELTA, -1, NULL),
        score(7, "abcdefghX", SK_OP_DELTA, 1, NULL), score(8, "abcdefgh", SK_OP_DELTA, 1, NULL),
    };
    struct sk_batch *b = batch(42, ms, 8);
    struct sk_apply *a = sk_apply_new(&b, 1);
    struct sk_buf sql;
    sk_buf_init(&sql);
    assert_int_equal(first(a, &sql, NULL), 0);
    /* each user's row of the INSERT IGNORE, in byte order */
    static const char *const order[] = {"'abc'", "'abcdefgh'", "'abcdefghA'", "'abcdefghX'",
                                        "'abcdefgh\xc3\xa9'", "'b'"};
    const char *at = sk_buf_cstr(&sql);
    for (size_t k = 0; k < sizeof order / sizeof *order; k++) {
        char want[64];
        snprintf(want, sizeof want, k ? "(%s,3,42," : "SELECT %s AS u", order[k]);
        const char *next = strstr(sk_buf_cstr(&sql), want);
        assert_non_null(next);
        assert_true(next > at || (k == 0 && next >= at));
        at = next;
    }
    grow(a, "1", "abc", "42", "-9223372036854775808");
    grow(a, "2", "abcdefgh", "42", "99999999999999999999"); /* overflows: no row */
    grow(a, "3", "abcdefghA", "42", "9223372036854775807");
    grow(a, "4", "abcdefghX", "42", "12a"); /* malformed: no row */
    grow(a, "5", "abcdefgh\xc3\xa9", "42", "-0");
    grow(a, "6", "b", "42", "-");
    char err[200];
    assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 1);
    sk_apply_outcome(a);
    assert_int_equal(ms[4]->score, INT64_MIN + 1);
    assert_int_equal(ms[4]->user_id, 1);
    assert_int_equal(ms[7]->score, 2);
    assert_int_equal(ms[5]->score, INT64_MAX - 1);
    assert_int_equal(ms[6]->score, 2);
    assert_int_equal(ms[6]->user_id, 4);
    assert_int_equal(ms[2]->score, 1);
    assert_int_equal(ms[1]->score, 1);
    assert_int_equal(ms[1]->user_id, 6);
    sk_buf_free(&sql);
    sk_apply_free(a);
    free_batch(b);
}

/* Known users: no INSERT for them, scores read by (game_id, user_id). */
static void known_users_skip_insert_and_join(void **state)
{
    (void)state;
    struct sk_known *k = knows_alice();
    struct sk_msg *ms[] = {score(1, "alice", SK_OP_DELTA, 5, NULL), score(2, "zed", SK_OP_DELTA, 1, NULL)};
    struct sk_batch *b = batch(42, ms, 2);
    struct sk_apply *a = sk_apply_new(&b, 1);
    struct sk_buf sql;
    sk_buf_init(&sql);
    assert_int_equal(first(a, &sql, k), 0);
    const char *q = sk_buf_cstr(&sql);
    assert_non_null(strstr(q, CREATE_USERS FIRST_ROW("'zed'", "42", "2") MAY_APPLY ";"));
    assert_non_null(strstr(q, "SELECT game_id, user_id, score FROM game_players WHERE (game_id, user_id) IN ((42,7))"));
    assert_non_null(strstr(q, "WHERE u.username IN ('zed')"));
    /* statements: INSERT users, START, games, offsets, known, unknown */
    assert_int_equal(last_stmt, 5);
    char *r[3] = {(char *)"42", (char *)"7", (char *)"100"};
    unsigned long len[3] = {2, 1, 3};
    sk_apply_row(a, 4, r, len, 3);
    grow(a, "9", "zed", NULL, NULL);
    char err[100];
    assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 1);
    assert_int_equal(ms[0]->score, 105);
    assert_int_equal(ms[1]->score, 1);
    assert_non_null(strstr(sk_buf_cstr(&sql), "VALUES (42,7,105),(42,9,1)"));
    sk_buf_free(&sql);
    sk_apply_free(a);
    free_batch(b);
    sk_known_free(k);
}

/* Rows of the users transaction: a user's mark (statement 2), and ids
 * (the statement before COMMIT). */
static void user_mark_row(struct sk_apply *a, const char *part, const char *name, const char *next)
{
    char *r[3] = {(char *)(uintptr_t)part, (char *)(uintptr_t)name, (char *)(uintptr_t)next};
    unsigned long len[3] = {strlen(part), strlen(name), strlen(next)};
    sk_apply_row(a, 2, r, len, 3);
}

static void user_id_row(struct sk_apply *a, const char *id, const char *name)
{
    char *r[2] = {(char *)(uintptr_t)id, (char *)(uintptr_t)name};
    unsigned long len[2] = {strlen(id), strlen(name)};
    sk_apply_row(a, last_stmt - 1, r, len, 2);
}

static void user_id_rows(struct sk_apply *a)
{
    user_id_row(a, "1", "alice");
    user_id_row(a, "2", "bob");
    user_id_row(a, "3", "carol");
}

static struct sk_msg *user_in(struct sk_part *p, int64_t off, const char *name, const char *nn)
{
    struct sk_msg *m = user(off, name, nn ? SK_NICK_SET : SK_NICK_ABSENT, nn);
    m->part = p;
    return m;
}

#define USERS_LOCK(marks)                                                                       \
    "START TRANSACTION;\nINSERT INTO user_offsets (topic, `partition`, username, next_offset) "  \
    "VALUES " marks " ON DUPLICATE KEY UPDATE next_offset = next_offset;\n"                      \
    "SET STATEMENT in_predicate_conversion_threshold = 1 FOR "                                  \
    "SELECT `partition`, username, next_offset FROM user_offsets WHERE topic = 'game.scores' "  \
    "AND (`partition`, username) IN "
/* the fence: a table of the writes joined once to the marks */
#define USERS_FENCE                                                                             \
    ") AS v LEFT JOIN user_offsets m ON m.topic = 'game.scores' AND m.`partition` = v.p AND "    \
    "m.username = v.n AND m.next_offset > v.o WHERE m.username IS NULL"
#define ABC_MARKS "('game.scores',3,'alice',0),('game.scores',3,'bob',0),('game.scores',3,'carol',0)"

static void user_fold(void **state)
{
    (void)state;
    struct sk_msg *ms[] = {
        user(1, "bob", SK_NICK_SET, "Bobby"), user(2, "alice", SK_NICK_ABSENT, NULL),
        user(3, "bob", SK_NICK_NULL, NULL),   user(4, "carol", SK_NICK_SET, "C"),
        user(5, "carol", SK_NICK_ABSENT, NULL),
    };
    struct sk_batch *b = batch(0, ms, 5);
    struct sk_apply *a = sk_apply_new(&b, 1);
    struct sk_buf sql;
    sk_buf_init(&sql);
    assert_int_equal(first(a, &sql, NULL), 0);
    /* Marks locked (created at 0) in key order and read; each user created
     * only from its last event at or above its mark, in byte order; each
     * nickname written only from an event at or above its mark; marks
     * moved, ids read. */
    assert_string_equal(
        sk_buf_cstr(&sql),
        USERS_LOCK(ABC_MARKS) "((3,'alice'),(3,'bob'),(3,'carol'));\n"
        "INSERT INTO users (username) SELECT v.n FROM (SELECT 'alice' AS n, 3 AS p, 2 AS o"
        " UNION ALL VALUES ('bob',3,3),('carol',3,5)" USERS_FENCE
        " ON DUPLICATE KEY UPDATE id = id;\n"
        "INSERT INTO users (username, nickname) SELECT v.n, v.k FROM (SELECT 'bob' AS n,NULL AS k, 3 "
        "AS p, 3 AS o UNION ALL VALUES ('carol','C',3,4)" USERS_FENCE
        " ON DUPLICATE KEY UPDATE nickname = VALUES(nickname);\n"
        "INSERT INTO user_offsets (topic, `partition`, username, next_offset) VALUES "
        "('game.scores',3,'alice',3),('game.scores',3,'bob',4),('game.scores',3,'carol',6) ON "
        "DUPLICATE KEY UPDATE next_offset = GREATEST(next_offset, VALUES(next_offset));\n"
        "SELECT id, username FROM users WHERE username IN ('alice','bob','carol');\nCOMMIT");
    assert_int_equal(last_stmt, 7);
    user_id_rows(a);
    char err[100];
    assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 0);
    sk_apply_outcome(a);
    assert_int_equal(ms[0]->user_id, 2);
    assert_int_equal(ms[1]->user_id, 1);
    assert_int_equal(ms[4]->user_id, 3);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ms[i]->status, SK_ST_APPLIED);
    assert_int_equal(sk_apply_deleted(a), 0);
    sk_buf_free(&sql);
    sk_apply_free(a);
    free_batch(b);
}

/* A user event whose user is not there after the commit: an error when it
 * applied (created just before), a duplicate when it lay below its mark
 * (a later tombstone deleted the user: the duplicate creates nothing). */
static void user_gone_after_the_commit(void **state)
{
    (void)state;
    struct sk_msg *ms[] = {user(4, "alice", SK_NICK_SET, "A"), user(5, "bob", SK_NICK_ABSENT, NULL)};
    struct sk_batch *b = batch(0, ms, 2);
    for (int applied = 0; applied < 2; applied++) {
        struct sk_apply *a = sk_apply_new(&b, 1);
        struct sk_buf sql;
        sk_buf_init(&sql);
        assert_int_equal(first(a, &sql, NULL), 0);
        user_mark_row(a, "3", "alice", applied ? "0" : "9");
        user_id_row(a, "2", "bob");
        char err[100];
        if (applied) {
            assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), -EPROTO);
            assert_non_null(strstr(err, "alice"));
        } else {
            assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 0);
            sk_apply_outcome(a);
            assert_int_equal(ms[0]->status, SK_ST_DUPLICATE);
            assert_int_equal(ms[0]->user_id, 0);
            assert_int_equal(ms[1]->status, SK_ST_APPLIED);
            assert_int_equal(ms[1]->user_id, 2);
        }
        sk_buf_free(&sql);
        sk_apply_free(a);
    }
    free_batch(b);
}

static struct sk_msg *tombstone(int64_t off, const char *name)
{
    struct sk_msg *m = user(off, name, SK_NICK_ABSENT, NULL);
    m->ev.del = true;
    return m;
}

/* the row of a user as the first round trip of a tombstone batch reads it */
static void user_old_row(struct sk_apply *a, const char *id, const char *name)
{
    char *r[2] = {(char *)(uintptr_t)id, (char *)(uintptr_t)name};
    unsigned long len[2] = {strlen(id), strlen(name)};
    sk_apply_row(a, 3, r, len, 2);
}

struct gone {
    char names[8][16];
    int64_t ids[8];
    unsigned n;
};

static void note_user(void *ud, const char *name, size_t len, int64_t id)
{
    struct gone *g = ud;
    snprintf(g->names[g->n], sizeof g->names[0], "%.*s", (int)len, name);
    g->ids[g->n++] = id;
}

/* A batch with tombstones: marks and rows read (and locked) first; then a
 * user deleted with its game_players rows, one not found, one renamed, one
 * created; the marks moved in the same transaction. */
static void tombstones_delete_users(void **state)
{
    (void)state;
    struct sk_msg *ms[] = {
        user(1, "alice", SK_NICK_SET, "A"), tombstone(2, "bob"), tombstone(3, "carol"),
        user(4, "dave", SK_NICK_ABSENT, NULL),
    };
    struct sk_batch *b = batch(0, ms, 4);
    struct sk_apply *a = sk_apply_new(&b, 1);
    struct sk_buf sql;
    sk_buf_init(&sql);
    assert_int_equal(first(a, &sql, NULL), 0);
    assert_string_equal(
        sk_buf_cstr(&sql),
        USERS_LOCK(ABC_MARKS ",('game.scores',3,'dave',0)")
        "((3,'alice'),(3,'bob'),(3,'carol'),(3,'dave'));\n"
        "SELECT id, username FROM users WHERE username IN ('alice','bob','carol','dave') FOR UPDATE");
    user_old_row(a, "1", "alice");
    user_old_row(a, "2", "bob");
    char err[100];
    assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 1);
    assert_string_equal(
        sk_buf_cstr(&sql),
        "DELETE FROM game_players WHERE user_id IN (2);\n"
        "DELETE FROM users WHERE id IN (2);\n"
        "INSERT INTO users (username, nickname) VALUES ('alice','A') ON DUPLICATE KEY UPDATE "
        "nickname = VALUES(nickname);\n"
        "INSERT INTO users (username) VALUES ('dave') ON DUPLICATE KEY UPDATE id = id;\n"
        "INSERT INTO user_offsets (topic, `partition`, username, next_offset) VALUES "
        "('game.scores',3,'alice',2),('game.scores',3,'bob',3),('game.scores',3,'carol',4),"
        "('game.scores',3,'dave',5) ON DUPLICATE KEY UPDATE next_offset = GREATEST(next_offset, "
        "VALUES(next_offset));\n"
        "SELECT id, username FROM users WHERE username IN ('alice','bob','carol','dave');\nCOMMIT");
    count_stmts(&sql);
    user_id_row(a, "1", "alice");
    user_id_row(a, "5", "dave");
    sk_apply_outcome(a);
    enum sk_status want[] = {SK_ST_APPLIED, SK_ST_DELETED, SK_ST_NOT_FOUND, SK_ST_APPLIED};
    int64_t ids[] = {1, 2, 0, 5};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ms[i]->status, want[i]);
        assert_int_equal(ms[i]->user_id, ids[i]);
    }
    assert_int_equal(sk_apply_deleted(a), 1);
    /* bob and carol are no one's now: the known map forgets them */
    struct gone g = {.n = 0};
    sk_apply_users(a, note_user, &g);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.names[1], "bob");
    assert_int_equal(g.ids[1], 0);
    assert_int_equal(g.ids[2], 0);
    assert_int_equal(g.ids[3], 5);
    sk_buf_free(&sql);
    sk_apply_free(a);
    free_batch(b);
}

/* One user's events in one batch, in order: renamed, deleted, created
 * again, deleted again, created again.  Each event's result names the row
 * it applied to; the row made and deleted within the transaction is made
 * and deleted for real, so that its id is a real one.  With the mark past
 * the first two, they are duplicates and the rest the same. */
static void delete_and_recreate_in_one_batch(void **state)
{
    (void)state;
    struct sk_msg *ms[] = {
        user(1, "alice", SK_NICK_SET, "A"), tombstone(2, "alice"), user(3, "alice", SK_NICK_ABSENT, NULL),
        tombstone(4, "alice"), user(5, "alice", SK_NICK_SET, "Z"),
    };
    struct sk_batch *b = batch(0, ms, 5);
    for (int marked = 0; marked < 2; marked++) {
        struct sk_apply *a = sk_apply_new(&b, 1);
        struct sk_buf sql;
        sk_buf_init(&sql);
        assert_int_equal(first(a, &sql, NULL), 0);
        if (marked)
            user_mark_row(a, "3", "alice", "3");
        else
            user_old_row(a, "1", "alice");
        char err[100];
        assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 1);
        const char *made = "INSERT INTO users (username, nickname) VALUES ('alice',NULL) ON DUPLICATE "
                           "KEY UPDATE nickname = VALUES(nickname);\n"
                           "SELECT id, username FROM users WHERE username = 'alice';\n"
                           "DELETE FROM game_players WHERE user_id = (SELECT id FROM users WHERE "
                           "username = 'alice');\n"
                           "DELETE FROM users WHERE username = 'alice';\n"
                           "INSERT INTO users (username, nickname) VALUES ('alice','Z') ON "
                           "DUPLICATE KEY UPDATE nickname = VALUES(nickname);\n"
                           "INSERT INTO user_offsets";
        const char *s = sk_buf_cstr(&sql);
        if (marked) {
            assert_true(strncmp(s, made, strlen(made)) == 0);
        } else {
            const char *old = "DELETE FROM game_players WHERE user_id IN (1);\n"
                              "DELETE FROM users WHERE id IN (1);\n";
            assert_true(strncmp(s, old, strlen(old)) == 0);
            assert_true(strncmp(s + strlen(old), made, strlen(made)) == 0);
        }
        count_stmts(&sql);
        /* the SELECT of the row made and deleted */
        char *r[2] = {(char *)"7", (char *)"alice"};
        unsigned long len[2] = {1, 5};
        sk_apply_row(a, marked ? 1 : 3, r, len, 2);
        user_id_row(a, "8", "alice");
        sk_apply_outcome(a);
        enum sk_status want[] = {SK_ST_APPLIED, SK_ST_DELETED, SK_ST_APPLIED, SK_ST_DELETED,
                                 SK_ST_APPLIED};
        int64_t ids[] = {1, 1, 7, 7, 8};
        for (int i = 0; i < 5; i++) {
            assert_int_equal(ms[i]->status, marked && i < 2 ? SK_ST_DUPLICATE : want[i]);
            assert_int_equal(ms[i]->user_id, marked && i < 2 ? 8 : ids[i]);
        }
        assert_int_equal(sk_apply_deleted(a), marked ? 1 : 2);
        sk_buf_free(&sql);
        sk_apply_free(a);
    }
    free_batch(b);
}

/* A tombstone consumed again, below its mark, deletes nothing: not the
 * user created since by a later event either. */
static void tombstone_below_the_mark_is_a_duplicate(void **state)
{
    (void)state;
    struct sk_msg *ms[] = {tombstone(6, "bob")};
    struct sk_batch *b = batch(0, ms, 1);
    struct sk_apply *a = sk_apply_new(&b, 1);
    struct sk_buf sql;
    sk_buf_init(&sql);
    assert_int_equal(first(a, &sql, NULL), 0);
    user_mark_row(a, "3", "bob", "9");
    user_old_row(a, "4", "bob");
    char err[100];
    assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 1);
    assert_string_equal(sk_buf_cstr(&sql),
                        "INSERT INTO user_offsets (topic, `partition`, username, next_offset) VALUES "
                        "('game.scores',3,'bob',7) ON DUPLICATE KEY UPDATE next_offset = "
                        "GREATEST(next_offset, VALUES(next_offset));\n"
                        "SELECT id, username FROM users WHERE username IN ('bob');\nCOMMIT");
    count_stmts(&sql);
    user_id_row(a, "4", "bob");
    sk_apply_outcome(a);
    assert_int_equal(ms[0]->status, SK_ST_DUPLICATE);
    assert_int_equal(ms[0]->user_id, 4);
    assert_int_equal(sk_apply_deleted(a), 0);
    sk_buf_free(&sql);
    sk_apply_free(a);
    free_batch(b);
}

/* A zombie's user events: those below the user's mark in their partition
 * are duplicates (their nickname was not written), those at or above it
 * applied; a retry reads the marks afresh. */
static void user_events_below_the_mark_are_duplicates(void **state)
{
    (void)state;
    struct sk_msg *ms[] = {
        user(10, "bob", SK_NICK_SET, "Old"), user(11, "alice", SK_NICK_ABSENT, NULL),
        user(12, "bob", SK_NICK_SET, "Older"), user(13, "carol", SK_NICK_SET, "C"),
    };
    struct sk_batch *b = batch(0, ms, 4);
    struct sk_apply *a = sk_apply_new(&b, 1);
    struct sk_buf sql;
    sk_buf_init(&sql);
    for (int attempt = 0; attempt < 2; attempt++) {
        assert_int_equal(first(a, &sql, NULL), 0);
        assert_non_null(strstr(sk_buf_cstr(&sql), "(SELECT 'bob' AS n,'Older' AS k, 3 AS p, 12 AS o UNION ALL VALUES ('carol','C',3,13)"));
        /* bob's mark is past both his events; carol's is exactly at hers;
         * alice has none; a mark of another partition says nothing here */
        if (attempt == 0) {
            user_mark_row(a, "3", "bob", "13");
            user_mark_row(a, "3", "carol", "13");
            user_mark_row(a, "4", "alice", "99");
            user_mark_row(a, "3", "dave", "99");
        }
        user_id_rows(a);
        char err[100];
        assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 0);
        sk_apply_outcome(a);
        enum sk_status want0 = attempt == 0 ? SK_ST_DUPLICATE : SK_ST_APPLIED;
        assert_int_equal(ms[0]->status, want0);
        assert_int_equal(ms[2]->status, want0);
        assert_int_equal(ms[1]->status, SK_ST_APPLIED);
        assert_int_equal(ms[3]->status, SK_ST_APPLIED);
        assert_int_equal(ms[2]->user_id, 2);
    }
    /* bob at 12 and 13 is applied above a mark of 12 */
    struct sk_msg *m2[] = {user(12, "bob", SK_NICK_SET, "New"), user(13, "bob", SK_NICK_NULL, NULL)};
    struct sk_batch *b2 = batch(0, m2, 2);
    struct sk_apply *a2 = sk_apply_new(&b2, 1);
    assert_int_equal(first(a2, &sql, NULL), 0);
    user_mark_row(a2, "3", "bob", "12");
    user_id_row(a2, "2", "bob");
    char err[100];
    assert_int_equal(sk_apply_second(a2, &sql, err, sizeof err), 0);
    assert_int_equal(m2[0]->status, SK_ST_APPLIED);
    assert_int_equal(m2[1]->status, SK_ST_APPLIED);
    sk_apply_free(a2);
    free_batch(b2);
    sk_buf_free(&sql);
    sk_apply_free(a);
    free_batch(b);
}

/* After partitions were added, one user's events in two partitions: each
 * is fenced by its own mark, and the candidates are written in transaction
 * order (the later one wins when both apply). */
static void user_in_two_partitions(void **state)
{
    (void)state;
    static struct sk_part part5 = {.topic = (char *)"game.scores", .partition = 5, .kind = SK_EV_USER};
    struct sk_msg *ms[] = {
        user_in(&part5, 2, "bob", "Five"), user_in(&part3, 7, "bob", "Three"),
        user_in(&part5, 3, "alice", NULL),
    };
    struct sk_batch *b = batch(0, ms, 3);
    struct sk_apply *a = sk_apply_new(&b, 1);
    struct sk_buf sql;
    sk_buf_init(&sql);
    assert_int_equal(first(a, &sql, NULL), 0);
    const char *s = sk_buf_cstr(&sql);
    assert_non_null(strstr(s, "IN ((3,'bob'),(5,'alice'),(5,'bob'));\n"));
    assert_non_null(strstr(s, "SELECT v.n, v.k FROM (SELECT 'bob' AS n,'Five' AS k, 5 AS p, 2 AS o"
                              " UNION ALL VALUES ('bob','Three',3,7)" USERS_FENCE " ON DUPLICATE"));
    assert_non_null(strstr(s, "VALUES ('game.scores',3,'bob',8),('game.scores',5,'alice',4),"
                              "('game.scores',5,'bob',3) ON"));
    user_mark_row(a, "3", "bob", "8");
    user_id_row(a, "2", "bob");
    user_id_row(a, "1", "alice");
    char err[100];
    assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 0);
    assert_int_equal(ms[0]->status, SK_ST_APPLIED);
    assert_int_equal(ms[1]->status, SK_ST_DUPLICATE);
    assert_int_equal(ms[2]->status, SK_ST_APPLIED);
    sk_buf_free(&sql);
    sk_apply_free(a);
    free_batch(b);
}

static struct sk_part *marked_part(int64_t game, int64_t next)
{
    static struct sk_part p = {.topic = (char *)"game.scores", .partition = 3, .kind = SK_EV_SCORE};
    sk_marks_free(p.marks);
    p.marks = sk_marks_new(10);
    if (next >= 0)
        sk_marks_set(p.marks, game, next);
    return &p;
}

/* A batch of game 42 whose events were consumed from the marked partition p. */
static struct sk_batch *marked_batch(struct sk_part *p, struct sk_msg **ms, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        ms[i]->part = p;
    return batch(42, ms, n);
}

/* Free what a test on a marked partition made (msgs back on part3 first). */
static void release(struct sk_apply *a, struct sk_buf *sql, struct sk_batch *b, struct sk_part *p)
{
    sk_buf_free(sql);
    sk_apply_free(a);
    for (struct sk_msg *m = b->head; m; m = m->next)
        m->part = &part3;
    free_batch(b);
    sk_marks_free(p->marks);
    p->marks = NULL;
}

static void mark_cb(void *ud, struct sk_part *part, int64_t game, int64_t next)
{
    (void)part;
    int64_t *out = ud;
    out[0] = game;
    out[1] = next;
}

static void ret_row(struct sk_apply *a, unsigned stmt, const char *uid, const char *sc)
{
    char *r[3] = {(char *)"42", (char *)(uintptr_t)uid, (char *)(uintptr_t)sc};
    unsigned long len[3] = {2, strlen(uid), strlen(sc)};
    sk_apply_row(a, stmt, r, len, 3);
}

/* Marks known, users known: one round trip that checks the marks, adds the
 * deltas in SQL and returns the new scores; every running total follows
 * from them. */
static void one_trip_when_marks_are_known(void **state)
{
    (void)state;
    struct sk_part *p = marked_part(42, 10);
    struct sk_known *k = knows_alice();
    sk_known_add(k, "bob", 3, 3);
    sk_known_add(k, "cat", 3, 9);
    struct sk_msg *ms[] = {
        score(10, "alice", SK_OP_DELTA, 5, NULL), score(11, "bob", SK_OP_SET, 50, NULL),
        score(12, "cat", SK_OP_DELTA, 2, NULL),   score(13, "alice", SK_OP_DELTA, 7, NULL),
        score(14, "cat", SK_OP_SET, 100, NULL),   score(15, "cat", SK_OP_DELTA, 1, NULL),
        score(16, "alice", SK_OP_DELTA, -20, NULL),
    };
    struct sk_batch *b = marked_batch(p, ms, 7);
    struct sk_apply *a = sk_apply_new(&b, 1);
    struct sk_buf sql;
    sk_buf_init(&sql);
    assert_int_equal(first(a, &sql, k), 0);
    assert_true(sk_apply_one_trip(a));
    /* the path's own guards send it back to reading first; a deadlock does not */
    /* statements: START, games, scores, RETURNING upsert, sets, offsets, COMMIT */
    assert_non_null(read_first(a, 1690, 3));
    assert_string_equal(read_first(a, 1048, 5), "the applied offsets of a game moved");
    assert_string_equal(read_first(a, 1048, 3), "a user is gone");
    assert_null(read_first(a, 1213, 3));
    /* alice's prefix sums are 5, 12, -8: a swing of 12 */
    assert_string_equal(sk_buf_cstr(&sql),
        "START TRANSACTION;\nINSERT INTO games (id, name) VALUES (42,'unnamed game 42') ON DUPLICATE "
        "KEY UPDATE id = id;\n"
        "SET STATEMENT in_predicate_conversion_threshold = 1 FOR SELECT game_id, user_id, score "
        "FROM game_players WHERE (game_id, user_id) IN ((42,9));\n"
        "INSERT INTO game_players (game_id, user_id, score) VALUES (42,7,-8) ON DUPLICATE KEY UPDATE "
        "score = IF(score BETWEEN -9223372036854775796 AND 9223372036854775795, score + "
        "VALUES(score), score * 4) RETURNING game_id, user_id, score;\n"
        "INSERT INTO game_players (game_id, user_id, score) VALUES (42,3,50),(42,9,101) ON DUPLICATE "
        "KEY UPDATE score = VALUES(score);\nINSERT INTO game_offsets (topic, `partition`, game_id, "
        "next_offset) VALUES ('game.scores',3,42,17) ON DUPLICATE KEY UPDATE next_offset = "
        "IF((`partition`, game_id, next_offset) IN ((3,42,10)), VALUES(next_offset), NULL);\nCOMMIT");
    ret_row(a, 2, "9", "40");  /* cat's old score */
    ret_row(a, 3, "7", "92");  /* alice's new score: it was 100 */
    char err[100];
    assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 0);
    sk_apply_outcome(a);
    assert_int_equal(ms[0]->score, 105);
    assert_int_equal(ms[3]->score, 112);
    assert_int_equal(ms[6]->score, 92);
    assert_int_equal(ms[1]->score, 50);
    assert_int_equal(ms[2]->score, 42);
    assert_int_equal(ms[4]->score, 100);
    assert_int_equal(ms[5]->score, 101);
    for (unsigned i = 0; i < 7; i++)
        assert_int_equal(ms[i]->status, SK_ST_APPLIED);
    assert_int_equal(ms[0]->user_id, 7);
    int64_t mark[2] = {0, 0};
    sk_apply_marks(a, mark_cb, mark);
    assert_int_equal(mark[0], 42);
    assert_int_equal(mark[1], 17);
    /* no new score returned for a player: the answers do not add up */
    assert_int_equal(first(a, &sql, k), 0);
    assert_true(sk_apply_one_trip(a));
    assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), -EPROTO);
    assert_non_null(strstr(err, "returned no new score"));
    release(a, &sql, b, p);
    sk_known_free(k);
}

/* The read path stays for everything the one round trip cannot know:
 * no mark, an event below the mark (maybe a duplicate), and an overflow
 * decided within the batch (rejected alone by the fold). */
static void read_first_when_in_doubt(void **state)
{
    (void)state;
    struct sk_known *k = knows_alice();
    struct {
        int64_t mark;             /* -1: none */
        const char *user;         /* of both events */
        enum sk_op op1, op2;
        int64_t v1, v2;
    } cases[] = {
        {-1, "alice", SK_OP_SET, SK_OP_DELTA, 1, 100},              /* no mark */
        {11, "alice", SK_OP_SET, SK_OP_DELTA, 1, 100},              /* offset 10 below the mark */
        {10, "alice", SK_OP_SET, SK_OP_DELTA, INT64_MAX - 50, 100}, /* +100 after the set overflows */
    };
    for (unsigned c = 0; c < sizeof cases / sizeof *cases; c++) {
        struct sk_part *p = marked_part(42, cases[c].mark);
        struct sk_msg *ms[] = {score(10, cases[c].user, cases[c].op1, cases[c].v1, NULL),
                               score(11, cases[c].user, cases[c].op2, cases[c].v2, NULL)};
        struct sk_batch *b = marked_batch(p, ms, 2);
        struct sk_apply *a = sk_apply_new(&b, 1);
        struct sk_buf sql;
        sk_buf_init(&sql);
        assert_int_equal(first(a, &sql, k), 0);
        assert_false(sk_apply_one_trip(a));
        assert_null(read_first(a, 1690, 3)); /* the read path rejects the event alone */
        assert_non_null(strstr(sk_buf_cstr(&sql), "SELECT `partition`, game_id, next_offset FROM game_offsets"));
        assert_null(strstr(sk_buf_cstr(&sql), "RETURNING"));
        release(a, &sql, b, p);
    }
    sk_known_free(k);
}

/* A one-round-trip transaction of ms on a partition that marked game 42
 * at 10, by an instance that knows alice (id 7): its first round trip. */
struct trip {
    struct sk_part *p;
    struct sk_known *k;
    struct sk_batch *b;
    struct sk_apply *a;
    struct sk_buf sql;
};

static const char *trip_first(struct trip *t, struct sk_msg **ms, unsigned n)
{
    t->p = marked_part(42, 10);
    t->k = knows_alice();
    t->b = marked_batch(t->p, ms, n);
    t->a = sk_apply_new(&t->b, 1);
    sk_buf_init(&t->sql);
    assert_int_equal(first(t->a, &t->sql, t->k), 0);
    assert_true(sk_apply_one_trip(t->a));
    return sk_buf_cstr(&t->sql);
}

static void trip_release(struct trip *t)
{
    release(t->a, &t->sql, t->b, t->p);
    sk_known_free(t->k);
}

/* The ids of new users, as the round trip that creates them returns them. */
static void user_row(struct sk_apply *a, unsigned stmt, const char *uid, const char *name)
{
    char *r[2] = {(char *)(uintptr_t)uid, (char *)(uintptr_t)name};
    unsigned long len[2] = {strlen(uid), strlen(name)};
    sk_apply_row(a, stmt, r, len, 2);
}

#define IDS_OF "SELECT id, username FROM users WHERE username IN "

/* The transaction after the round trip that made its new users (the
 * second answer is 2: it goes as a first round trip), its statements
 * counted. */
static const char *trip_then(struct trip *t)
{
    char err[100];
    assert_int_equal(sk_apply_second(t->a, &t->sql, err, sizeof err), 2);
    count_stmts(&t->sql);
    const char *q = sk_buf_cstr(&t->sql);
    assert_true(!strncmp(q, "START TRANSACTION;\n", 19));
    return q;
}

/* A new user on the one-round-trip path: created in a round trip of its
 * own before the transaction, which also reads its id, so that the
 * transaction names every player by id. */
static void one_trip_with_a_new_user(void **state)
{
    (void)state;
    struct sk_msg *ms[] = {score(10, "zed", SK_OP_DELTA, 100, NULL), score(11, "alice", SK_OP_DELTA, 1, NULL)};
    struct trip t;
    const char *q = trip_first(&t, ms, 2);
    struct sk_apply *a = t.a;
    assert_string_equal(q, CREATE_USERS FIRST_ROW("'zed'", "42", "10") MAY_APPLY ";\n" IDS_OF "('zed')");
    assert_int_equal(last_stmt, 1);
    assert_int_equal(sk_apply_mark_check_stmt(a), -1); /* no guard in it */
    user_row(a, 1, "9", "zed");
    q = trip_then(&t);
    assert_non_null(strstr(q, "INSERT INTO game_players (game_id, user_id, score) VALUES (42,7,1),(42,9,100) "
                              "ON DUPLICATE KEY UPDATE score = IF("));
    assert_null(strstr(q, "users"));
    /* statements: START, games, the upsert RETURNING, offsets, COMMIT */
    assert_int_equal(last_stmt, 4);
    assert_int_equal(sk_apply_mark_check_stmt(a), 3);
    ret_row(a, 2, "9", "150");
    ret_row(a, 2, "7", "1");
    char err[100];
    assert_int_equal(sk_apply_second(a, &t.sql, err, sizeof err), 0);
    sk_apply_outcome(a);
    assert_int_equal(ms[0]->score, 150);
    assert_int_equal(ms[0]->user_id, 9);
    assert_int_equal(ms[1]->score, 1);
    trip_release(&t);
}

/* Two new users and a known one: the new ones made in one statement, in
 * byte order, then all three upserted by id in key order. */
static void one_trip_two_new_users(void **state)
{
    (void)state;
    struct sk_msg *ms[] = {score(10, "zed", SK_OP_DELTA, 100, NULL), score(11, "alice", SK_OP_DELTA, 1, NULL),
                           score(12, "amy", SK_OP_DELTA, 5, NULL), score(13, "zed", SK_OP_DELTA, 2, NULL)};
    struct trip t;
    const char *q = trip_first(&t, ms, 4);
    struct sk_apply *a = t.a;
    assert_string_equal(q, CREATE_USERS FIRST_ROW("'amy'", "42", "12") MORE_ROWS "('zed',3,42,13)" MAY_APPLY
                           ";\n" IDS_OF "('amy','zed')");
    user_row(a, 1, "9", "zed");
    user_row(a, 1, "8", "amy");
    q = trip_then(&t);
    assert_non_null(strstr(q, "VALUES (42,7,1),(42,8,5),(42,9,102) ON DUPLICATE KEY UPDATE"));
    assert_null(strstr(q, "users"));
    ret_row(a, 2, "7", "1");
    ret_row(a, 2, "8", "5");
    ret_row(a, 2, "9", "102");
    char err[100];
    assert_int_equal(sk_apply_second(a, &t.sql, err, sizeof err), 0);
    sk_apply_outcome(a);
    /* each event's running total and user, from the returned scores */
    static const int64_t total[] = {100, 1, 5, 102}, id[] = {9, 7, 8, 9};
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(ms[i]->score, total[i]);
        assert_int_equal(ms[i]->user_id, id[i]);
    }
    trip_release(&t);
}

/* A new user that the round trip before did not find (not created: its
 * events lie below a mark that moved; or deleted right after): the attempt
 * leaves the one-round-trip path for the read path, which knows the ids
 * just read and decides event by event. */
static void one_trip_new_user_not_found(void **state)
{
    (void)state;
    struct sk_msg *ms[] = {score(10, "zed", SK_OP_DELTA, 100, NULL), score(11, "alice", SK_OP_DELTA, 1, NULL),
                           score(12, "amy", SK_OP_DELTA, 5, NULL)};
    struct trip t;
    trip_first(&t, ms, 3);
    struct sk_apply *a = t.a;
    user_row(a, 1, "8", "amy"); /* no row for zed */
    char err[100];
    assert_int_equal(sk_apply_second(a, &t.sql, err, sizeof err), 2);
    assert_false(sk_apply_one_trip(a));
    const char *q = sk_buf_cstr(&t.sql);
    /* zed made again if one of its events may apply, alice and amy known */
    assert_true(!strncmp(q, CREATE_USERS FIRST_ROW("'zed'", "42", "10") MAY_APPLY ";\nSTART TRANSACTION;\n",
                         strlen(CREATE_USERS FIRST_ROW("'zed'", "42", "10") MAY_APPLY ";\nSTART TRANSACTION;\n")));
    assert_non_null(strstr(q, "SELECT `partition`, game_id, next_offset FROM game_offsets"));
    assert_non_null(strstr(q, "FROM game_players WHERE (game_id, user_id) IN ((42,7),(42,8))"));
    assert_non_null(strstr(q, "WHERE u.username IN ('zed')"));
    assert_null(strstr(q, "RETURNING"));
    trip_release(&t);
}

/* A delta before a set of a user this instance does not know yet: the
 * user made and its id read first; the old score is read in the
 * transaction; without a row the running total starts from 0. */
static void one_trip_set_after_delta_of_a_new_user(void **state)
{
    (void)state;
    struct sk_part *p = marked_part(42, 10);
    struct sk_known *k = knows_alice();
    struct sk_msg *ms[] = {score(10, "zed", SK_OP_DELTA, 1, NULL), score(11, "zed", SK_OP_SET, 100, NULL),
                           score(12, "zed", SK_OP_DELTA, 5, NULL)};
    struct sk_batch *b = marked_batch(p, ms, 3);
    struct sk_apply *a = sk_apply_new(&b, 1);
    struct sk_buf sql;
    sk_buf_init(&sql);
    for (int row = 0; row < 2; row++) { /* zed has a row with 40; then none */
        assert_int_equal(first(a, &sql, k), 0);
        assert_true(sk_apply_one_trip(a));
        assert_non_null(strstr(sk_buf_cstr(&sql), MAY_APPLY ";\n" IDS_OF "('zed')"));
        user_row(a, 1, "9", "zed");
        char err[100];
        assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 2);
        count_stmts(&sql);
        assert_non_null(strstr(sk_buf_cstr(&sql),
            ";\nSET STATEMENT in_predicate_conversion_threshold = 1 FOR SELECT game_id, user_id, score "
            "FROM game_players WHERE (game_id, user_id) IN ((42,9));\n"
            "INSERT INTO game_players (game_id, user_id, score) VALUES (42,9,105) ON DUPLICATE KEY "
            "UPDATE score = VALUES(score);\n"));
        /* statements: START, games, old scores, sets, offsets, COMMIT */
        assert_int_equal(last_stmt, 5);
        if (row == 0)
            ret_row(a, 2, "9", "40");
        assert_int_equal(sk_apply_second(a, &sql, err, sizeof err), 0);
        sk_apply_outcome(a);
        assert_int_equal(ms[0]->score, row == 0 ? 41 : 1);
        assert_int_equal(ms[1]->score, 100);
        assert_int_equal(ms[2]->score, 105);
        assert_int_equal(ms[0]->user_id, 9);
    }
    release(a, &sql, b, p);
    sk_known_free(k);
}

/* A partition whose marks were all read at assignment knows which games
 * have no game_offsets row: their first batch takes one round trip too, and
 * its offsets upsert fails (NULL) if a row appeared meanwhile. */
static void one_trip_for_a_new_game(void **state)
{
    (void)state;
    struct sk_part *p = marked_part(42, 10);
    struct sk_known *k = knows_alice();
    struct sk_msg *m1[] = {score(10, "alice", SK_OP_DELTA, 5, NULL)};
    struct sk_msg *m2[] = {score(11, "alice", SK_OP_DELTA, 2, NULL)};
    m1[0]->part = m2[0]->part = p;
    m2[0]->ev.game_id = 43;
    struct sk_batch *bs[] = {batch(42, m1, 1), batch(43, m2, 1)};
    struct sk_apply *a = sk_apply_new(bs, 2);
    struct sk_buf sql;
    sk_buf_init(&sql);
    /* marks not all read: game 43 has none, so the transaction reads first */
    assert_int_equal(first(a, &sql, k), 0);
    assert_false(sk_apply_one_trip(a));
    sk_marks_complete(p->marks);
    assert_int_equal(first(a, &sql, k), 0);
    assert_true(sk_apply_one_trip(a));
    /* a row of game 43 (another writer) is not in the list: NULL */
    assert_non_null(strstr(sk_buf_cstr(&sql),
        "VALUES ('game.scores',3,42,11),('game.scores',3,43,12) ON DUPLICATE KEY UPDATE next_offset = "
        "IF((`partition`, game_id, next_offset) IN ((3,42,10)), VALUES(next_offset), NULL);\nCOMMIT"));
    assert_string_equal(read_first(a, 1048, 3), "the applied offsets of a game moved");
    int64_t mark[2] = {0, 0};
    sk_apply_marks(a, mark_cb, mark); /* game 43 last: its mark after the batch */
    assert_int_equal(mark[0], 43);
    assert_int_equal(mark[1], 12);
    /* only new games: any existing row is refused */
    sk_apply_free(a);
    sk_marks_forget(p->marks, 42); /* forgotten in a complete map: unknown, not new */
    assert_int_equal(sk_marks_get(p->marks, 42), -1);
    a = sk_apply_new(&bs[1], 1);
    assert_int_equal(first(a, &sql, k), 0);
    assert_true(sk_apply_one_trip(a));
    assert_non_null(strstr(sk_buf_cstr(&sql),
        "VALUES ('game.scores',3,43,12) ON DUPLICATE KEY UPDATE next_offset = NULL;\nCOMMIT"));
    m1[0]->part = &part3;
    free_batch(bs[0]);
    release(a, &sql, bs[1], p);
    sk_known_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(score_fold),
        cmocka_unit_test(score_missing_user_is_an_error),
        cmocka_unit_test(unnamed_game),
        cmocka_unit_test(duplicates_are_not_applied),
        cmocka_unit_test(two_games_share_a_transaction),
        cmocka_unit_test(known_users_skip_insert_and_join),
        cmocka_unit_test(names_in_byte_order_numbers_exact),
        cmocka_unit_test(user_fold),
        cmocka_unit_test(user_gone_after_the_commit),
        cmocka_unit_test(tombstones_delete_users),
        cmocka_unit_test(delete_and_recreate_in_one_batch),
        cmocka_unit_test(tombstone_below_the_mark_is_a_duplicate),
        cmocka_unit_test(user_events_below_the_mark_are_duplicates),
        cmocka_unit_test(user_in_two_partitions),
        cmocka_unit_test(one_trip_when_marks_are_known),
        cmocka_unit_test(read_first_when_in_doubt),
        cmocka_unit_test(one_trip_with_a_new_user),
        cmocka_unit_test(one_trip_two_new_users),
        cmocka_unit_test(one_trip_new_user_not_found),
        cmocka_unit_test(repeated_offset_aborts),
        cmocka_unit_test(one_trip_set_after_delta_of_a_new_user),
        cmocka_unit_test(one_trip_for_a_new_game),
    };
    return cmocka_run_group_tests_name("apply", tests, NULL, NULL);
}
