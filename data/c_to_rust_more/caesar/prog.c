/* Caesar cipher: shift letters of stdin by the argument (default 3), keep everything else. */
#include <stdio.h>
#include <stdlib.h>

int shift_char(int c, int k) {
    if (c >= 'a' && c <= 'z') return 'a' + (c - 'a' + k) % 26;
    if (c >= 'A' && c <= 'Z') return 'A' + (c - 'A' + k) % 26;
    return c;
}

int main(int argc, char **argv) {
    int k = argc > 1 ? atoi(argv[1]) : 3;
    k = ((k % 26) + 26) % 26;
    int c;
    while ((c = getchar()) != EOF) putchar(shift_char(c, k));
    return 0;
}
