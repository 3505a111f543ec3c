/* Count how often each word length (1..10, longer counted as 10) occurs in stdin and draw a bar chart. */
#include <stdio.h>
#include <ctype.h>

int main(void) {
    int counts[11] = {0};
    int len = 0, c;
    while ((c = getchar()) != EOF) {
        if (isalpha(c)) { len++; }
        else if (len > 0) { counts[len > 10 ? 10 : len]++; len = 0; }
    }
    if (len > 0) counts[len > 10 ? 10 : len]++;
    for (int i = 1; i <= 10; i++) {
        if (counts[i] == 0) continue;
        printf("%2d%s |", i, i == 10 ? "+" : " ");
        for (int j = 0; j < counts[i]; j++) putchar('#');
        printf(" %d\n", counts[i]);
    }
    return 0;
}
