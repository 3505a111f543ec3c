/* fib N: the N-th Fibonacci number (64-bit); a usage line on stderr and exit 1 without N. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: fib N\n");
        return 1;
    }
    int n = atoi(argv[1]);
    if (n < 0 || n > 92) {
        fprintf(stderr, "n out of range: %d\n", n);
        return 2;
    }
    long long a = 0, b = 1;
    for (int i = 0; i < n; i++) {
        long long t = a + b;
        a = b;
        b = t;
    }
    printf("fib(%d) = %lld\n", n, a);
    return 0;
}
