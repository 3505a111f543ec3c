/* Parse a decimal integer like atoi: optional sign, digits, stops at the first other character. */
#include <stdio.h>

long parse(const char *s) {
    long sign = 1, value = 0;
    while (*s == ' ') s++;
    if (*s == '-' || *s == '+') { if (*s == '-') sign = -1; s++; }
    while (*s >= '0' && *s <= '9') { value = value * 10 + (*s - '0'); s++; }
    return sign * value;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s NUMBER...\n", argv[0]); return 1; }
    for (int i = 1; i < argc; i++) printf("%ld\n", parse(argv[i]));
    return 0;
}
