/* stats: integers on stdin (any whitespace) -> count, sum, min and max; "no numbers" when there are none. */
#include <stdio.h>

int main(void) {
    long long x, sum = 0, lo = 0, hi = 0;
    int n = 0;
    while (scanf("%lld", &x) == 1) {
        if (n == 0 || x < lo) lo = x;
        if (n == 0 || x > hi) hi = x;
        sum += x;
        n++;
    }
    if (n == 0) {
        printf("no numbers\n");
        return 0;
    }
    printf("count %d\n", n);
    printf("sum %lld\n", sum);
    printf("min %lld max %lld\n", lo, hi);
    return 0;
}
