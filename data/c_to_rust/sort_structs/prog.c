/* Read "name age" lines from stdin, sort by age then name, print them numbered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct person { char name[32]; int age; };

static int cmp(const void *a, const void *b) {
    const struct person *p = a, *q = b;
    if (p->age != q->age) return p->age - q->age;
    return strcmp(p->name, q->name);
}

int main(void) {
    struct person people[100];
    int n = 0;
    while (n < 100 && scanf("%31s %d", people[n].name, &people[n].age) == 2) n++;
    qsort(people, n, sizeof people[0], cmp);
    for (int i = 0; i < n; i++) printf("%d. %s %d\n", i + 1, people[i].name, people[i].age);
    printf("count %d\n", n);
    return 0;
}
