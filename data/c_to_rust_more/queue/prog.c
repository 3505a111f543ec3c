#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A fixed-size ring buffer queue driven by commands on stdin:
   "push N", "pop", "size". Prints results; exits 2 on a bad command. */

#define CAP 4

struct queue { int items[CAP]; int head; int len; };

static int push(struct queue *q, int v) {
    if (q->len == CAP) return 0;
    q->items[(q->head + q->len) % CAP] = v;
    q->len++;
    return 1;
}

static int pop(struct queue *q, int *out) {
    if (q->len == 0) return 0;
    *out = q->items[q->head];
    q->head = (q->head + 1) % CAP;
    q->len--;
    return 1;
}

int main(void) {
    struct queue q = {{0}, 0, 0};
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        int v;
        if (sscanf(line, "push %d", &v) == 1) {
            printf(push(&q, v) ? "ok\n" : "full\n");
        } else if (strncmp(line, "pop", 3) == 0) {
            if (pop(&q, &v)) printf("%d\n", v); else printf("empty\n");
        } else if (strncmp(line, "size", 4) == 0) {
            printf("%d\n", q.len);
        } else {
            fprintf(stderr, "bad command\n");
            return 2;
        }
    }
    return 0;
}
