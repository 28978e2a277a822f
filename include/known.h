/* known — a bounded map of usernames known to exist in `users` to their
 * ids, so that a transaction sends INSERT IGNORE only for names it has not
 * seen before (InnoDB handles an INSERT IGNORE of an existing row by
 * inserting it and rolling that back: costly, and it burns an
 * auto-increment value) and reads scores by (game_id, user_id) point
 * lookups instead of joining users.
 *
 * Ids are never reused (auto-increment), so a remembered id is either right
 * or gone: a user deleted from outside shows as a foreign-key error or a
 * missing row, after which the caller clears the map.  Bounded: when full,
 * the names not looked up for the longest are forgotten, about half of the
 * map at a time (two generations, see src/known.c). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sk_known;

struct sk_known *sk_known_new(size_t max_entries);
void sk_known_free(struct sk_known *k);
/* The id of a known username, 0 when unknown.  Not const: a hit in the
 * older generation moves the name into the current one. */
int64_t sk_known_id(struct sk_known *k, const char *name, size_t len);
void sk_known_add(struct sk_known *k, const char *name, size_t len, int64_t id);
void sk_known_clear(struct sk_known *k);
/* Entries held (a name kept in both generations counts twice). */
size_t sk_known_count(const struct sk_known *k);
