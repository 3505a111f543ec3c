/* Count lines, words and bytes of stdin, like wc; the longest word too. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    long lines = 0, words = 0, bytes = 0;
    int c, in_word = 0, len = 0, best = 0;
    char cur[64], longest[64] = "";
    while ((c = getchar()) != EOF) {
        bytes++;
        if (c == '\n') lines++;
        if (isspace(c)) {
            if (in_word && len > best) { cur[len] = 0; strcpy(longest, cur); best = len; }
            in_word = 0; len = 0;
        } else {
            if (!in_word) words++;
            in_word = 1;
            if (len < 63) cur[len++] = (char)c;
        }
    }
    if (in_word && len > best) { cur[len] = 0; strcpy(longest, cur); }
    printf("%ld %ld %ld\nlongest %s\n", lines, words, bytes, longest);
    return 0;
}
