/* Read n and two n x n integer matrices from stdin; print their product and its trace. */
#include <stdio.h>

int main(void) {
    int n;
    if (scanf("%d", &n) != 1 || n < 1 || n > 10) { fprintf(stderr, "bad size\n"); return 1; }
    long a[10][10], b[10][10], c[10][10] = {{0}};
    for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) if (scanf("%ld", &a[i][j]) != 1) return 1;
    for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) if (scanf("%ld", &b[i][j]) != 1) return 1;
    for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) for (int k = 0; k < n; k++) c[i][j] += a[i][k] * b[k][j];
    long trace = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) printf(j ? " %ld" : "%ld", c[i][j]);
        printf("\n");
        trace += c[i][i];
    }
    printf("trace %ld\n", trace);
    return 0;
}
