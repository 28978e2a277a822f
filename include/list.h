/* list — an intrusive doubly-linked list: the one list helper for objects
 * that leave from the middle of a list (a transaction that ends, a game
 * that stops waiting).
 *
 * The head is a node of its own and the list is circular through it, so
 * adding and removing never tests for an end.  A node that is in no list
 * has next == NULL, which is what calloc gives. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct sk_list {
    struct sk_list *prev, *next;
};

#define sk_list_entry(node, type, member) \
    ((type *)(void *)((char *)(node) - offsetof(type, member)))
#define sk_list_const_entry(node, type, member) \
    ((const type *)(const void *)((const char *)(node) - offsetof(type, member)))

static inline void sk_list_init(struct sk_list *head) { head->prev = head->next = head; }

static inline bool sk_list_empty(const struct sk_list *head) { return head->next == head; }

static inline bool sk_list_linked(const struct sk_list *node) { return node->next != NULL; }

static inline void sk_list_append(struct sk_list *head, struct sk_list *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

static inline void sk_list_del(struct sk_list *node)
{
    if (!node->next)
        return;
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = NULL;
}
