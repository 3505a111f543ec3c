/* Build a singly linked list from the arguments, reverse it, print it and its sum. */
#include <stdio.h>
#include <stdlib.h>

struct node { int value; struct node *next; };

struct node *push(struct node *head, int v) {
    struct node *n = malloc(sizeof *n);
    n->value = v; n->next = head;
    return n;
}

struct node *reverse(struct node *head) {
    struct node *prev = NULL;
    while (head) { struct node *next = head->next; head->next = prev; prev = head; head = next; }
    return prev;
}

int main(int argc, char **argv) {
    struct node *head = NULL;
    for (int i = argc - 1; i >= 1; i--) head = push(head, atoi(argv[i]));
    head = reverse(head);
    long sum = 0;
    for (struct node *p = head; p; p = p->next) { printf("%d%s", p->value, p->next ? " -> " : "\n"); sum += p->value; }
    if (!head) printf("empty\n");
    printf("sum %ld\n", sum);
    while (head) { struct node *n = head->next; free(head); head = n; }
    return 0;
}
