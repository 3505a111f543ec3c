/* Reverse each argument in place (ASCII) and print it with its length. */
#include <stdio.h>
#include <string.h>

void reverse(char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n / 2; i++) { char t = s[i]; s[i] = s[n - 1 - i]; s[n - 1 - i] = t; }
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        reverse(argv[i]);
        printf("%s (%zu)\n", argv[i], strlen(argv[i]));
    }
    return argc > 1 ? 0 : 1;
}
