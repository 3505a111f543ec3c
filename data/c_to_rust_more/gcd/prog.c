/* Greatest common divisor of each pair of arguments, Euclid's algorithm. */
#include <stdio.h>
#include <stdlib.h>

unsigned long gcd(unsigned long a, unsigned long b) {
    while (b != 0) { unsigned long t = a % b; a = b; b = t; }
    return a;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc % 2 == 0) { fprintf(stderr, "usage: %s A B [A B]...\n", argv[0]); return 2; }
    for (int i = 1; i + 1 < argc; i += 2) {
        unsigned long a = strtoul(argv[i], NULL, 10), b = strtoul(argv[i + 1], NULL, 10);
        printf("gcd(%lu, %lu) = %lu\n", a, b, gcd(a, b));
    }
    return 0;
}
