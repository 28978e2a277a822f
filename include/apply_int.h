/* apply_int — the insides of apply shared by its three files: the
 * transaction's tables (users, games, players, offsets, each sorted and
 * unique) and the SQL pieces they write.
 *
 * src/apply.c owns building the transaction and the read path of score
 * transactions (read before writing, fold, second round trip);
 * src/apply_one_trip.c owns their one-round-trip path; src/apply_users.c
 * owns the users transaction.  Nothing outside these files includes this
 * header: the rest of the daemon sees include/apply.h only. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apply.h"
#include "buf.h"
#include "msg.h"

/* A username of the transaction (score: for the users INSERT and lookup). */
struct user {
    const char *name;
    size_t len;
    int64_t uid;    /* 0 until known (from the caller's map) or read back; 0 at the end: gone */
    bool cached;    /* uid came from the caller's map of known users */
    /* a users transaction with a tombstone (apply_users.c) */
    int64_t old;    /* the id of the row read first, 0: none */
    bool exists;    /* during the fold: the user exists */
    int gen;        /* during the fold: the row it is, -1 the one read first, else in gens */
    int nick;       /* the msg whose nickname the row read first takes, -1: none */
    bool del_old;   /* the row read first is deleted */
};

/* One (game, user) row of game_players. */
struct player {
    int64_t game;
    unsigned user;  /* index into users */
    int64_t score;  /* running total during the fold */
    bool touched;   /* an event of this transaction applies to it */
    /* the one-round-trip path (see apply_one_trip.c) */
    bool set;       /* some event of the transaction sets the score */
    bool pre;       /* a delta comes before the first set: needs the old score */
    int64_t acc;    /* after the last set: the score; without a set: the sum of the deltas */
    uint64_t swing; /* without a set: the largest |sum| of a prefix of the deltas */
    bool got;       /* the upsert returned the row's new score (in final) */
    int64_t final;
};

/* A game of the transaction and the name it gets from it: its last
 * game_name in partition order, NULL when none of its events names it. */
struct game {
    int64_t id;
    const struct sk_event *named;
};

/* The applied position of one game in one input partition (game_offsets),
 * or, in a users transaction, of one user (user_offsets): game is then the
 * index of the user in users. */
struct poff {
    int32_t partition;
    int64_t game;
    struct sk_part *part;
    int nick;          /* users: the last msg here naming a nickname, -1 none */
    int64_t next;      /* first offset not applied yet, as read or remembered (-1: none) */
    int64_t batch_min; /* lowest and highest offset of the transaction here */
    int64_t batch_max;
};

struct sk_apply {
    enum sk_event_kind kind;
    bool shared;           /* several games share this transaction */
    const char *topic;     /* input topic (score transactions: one) */
    struct sk_msg **msgs;  /* every event, each game's in partition order */
    unsigned n;
    struct user *users;    /* unique, sorted by name bytes */
    unsigned nusers;
    struct game *games;    /* unique, sorted by id */
    unsigned ngames;
    struct player *players; /* unique (game, user), sorted */
    unsigned nplayers;
    unsigned *mplayer;     /* msgs[i] -> players[mplayer[i]] (score) */
    unsigned *muser;       /* msgs[i] -> users[muser[i]] */
    struct poff *offs;     /* unique (partition, game), sorted */
    unsigned noffs;
    unsigned *moff;        /* msgs[i] -> offs[moff[i]] */
    unsigned *by_uid;      /* indexes of users with an id, sorted by id */
    unsigned nindexed;
    bool uids_changed;     /* ids were read since by_uid was built */
    unsigned ncached;      /* users whose id came from the caller's map */
    bool has_del;          /* a users transaction with a tombstone */
    struct ugen *gens;     /* has_del: the rows it creates (apply_users.c) */
    unsigned ngens;
    int *mgen;             /* has_del: msgs[i] -> the row it applied to (-1: the one read first) */
    /* statement numbers of the first round trip's SELECTs (and of the
     * one-round-trip path's upsert that returns scores), -1: not sent */
    int st_offsets, st_known, st_unknown, st_returned;
    int st_old; /* has_del: the users rows read (and locked) first */
    int st_moved; /* one round trip: the game_offsets upsert, which checks the marks */
    bool one_trip;       /* this attempt takes the one-round-trip path */
    bool pre_users;      /* one_trip: this round trip only creates the users new to the
                          * caller's map and reads their ids; the transaction follows */
    uint64_t headroom;   /* one_trip: the largest swing of a player without a set */
};

/* Prefix of a lookup by a list of keys: MariaDB turns an IN list into a
 * table joined by the primary key only from in_predicate_conversion_threshold
 * elements on; below that the range optimizer builds one range per tuple,
 * and for our (a, b) IN ((..), ..) lists of a few hundred keys that costs
 * the server several times what the join does, more than the upserts
 * themselves. */
#define IN_AS_TABLE "SET STATEMENT in_predicate_conversion_threshold = 1 FOR "

/* The index of the user named name in users, -1 when absent. */
long apply_find_user(const struct sk_apply *a, const char *name, size_t len);
/* The index of (partition, game) in offs (game: a user's index in a users
 * transaction), -1 when absent. */
long apply_find_off(const struct sk_apply *a, int32_t partition, int64_t game);
/* A decimal integer of a row. */
bool apply_parse_i64(const char *s, unsigned long len, int64_t *out);
/* The usernames, in order, each after sep but the first. */
void apply_user_list(struct sk_buf *sql, const struct sk_apply *a, const char *sep);

/* Separate a statement from the one before it, if any. */
void apply_next_statement(struct sk_buf *sql);
/* Upsert the transaction's games, named ones renamed, the others created
 * with a name that says they had none (an existing name is kept); returns
 * whether a statement was written. */
bool apply_upsert_games(struct sk_buf *sql, const struct sk_apply *a, bool named);
/* What opens row number row of a derived table written in SQL: "(SELECT "
 * for the first, whose values are named ("v AS name"), then a VALUES list
 * (MariaDB names a VALUES table's columns after its first row's values).
 * A table of rows joined once lets the server optimise one query block
 * where a SELECT or subquery per row costs one each. */
void apply_table_row(struct sk_buf *sql, unsigned row);
/* Upsert the players that pick() chooses, by user id, in key order
 * (game_id, user_id): two writers of overlapping rows take their locks in
 * the same order.  tail follows the VALUES list.  Returns the number of
 * rows, -ENOMEM when out of memory. */
long apply_upsert_players(struct sk_buf *sql, const struct sk_apply *a,
                          bool (*pick)(const struct player *), const char *tail);
/* The game_offsets upsert up to its VALUES list, each (partition, game)
 * moved past the transaction's last offset; the caller adds the ON
 * DUPLICATE KEY clause its path needs. */
void apply_offset_values(struct sk_buf *sql, const struct sk_apply *a);
/* The transaction's (partition, game_id) keys; or, when marked, those of
 * the games with a mark, each with its mark. */
void apply_offset_keys(struct sk_buf *sql, const struct sk_apply *a, bool marked);
/* Point lookups of the scores of the players pick() chooses; returns
 * whether any was asked for. */
bool apply_select_scores(struct sk_buf *sql, const struct sk_apply *a,
                         bool (*pick)(const struct sk_apply *, const struct player *));
/* The usernames whose id the caller's map did not know, as an SQL list. */
void apply_unknown_user_list(struct sk_buf *sql, const struct sk_apply *a);
/* Give every event its outcome and running total, in partition order. */
void apply_fold(struct sk_apply *a);

/* The one-round-trip path (apply_one_trip.c). */
/* May this attempt take it?  Also prepares the players' sums for it. */
bool apply_one_trip_ok(struct sk_apply *a);
/* Its transaction, every user with an id; 0, or -ENOMEM. */
int apply_one_trip_first(struct sk_apply *a, struct sk_buf *sql);
/* After its commit: each player's score before the transaction, from the
 * new score the upsert returned; 0, or -EPROTO with a message in err when
 * one is missing. */
int apply_one_trip_scores(struct sk_apply *a, char *err, size_t errlen);

/* The users transaction (apply_users.c). */
/* Its first round trip; 0, or -ENOMEM. */
int apply_users_first(struct sk_apply *a, struct sk_buf *sql);
/* A row of statement st of either round trip. */
void apply_users_row(struct sk_apply *a, int st, char **row, unsigned long *lengths, unsigned nf);
/* After the first round trip, as sk_apply_second. */
int apply_users_second(struct sk_apply *a, struct sk_buf *sql, char *err, size_t errlen);
/* After the commit: the user id of msgs[i]'s result, 0: none. */
int64_t apply_users_id(const struct sk_apply *a, unsigned i);
/* After the commit: the users its tombstones deleted. */
unsigned apply_users_deleted(const struct sk_apply *a);
