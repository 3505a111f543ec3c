/* Bit facts about a 32-bit unsigned number: popcount, highest bit, bit-reversed, power of two. */
#include <stdio.h>
#include <stdlib.h>

int popcount(unsigned v) { int c = 0; while (v) { c += v & 1u; v >>= 1; } return c; }
int highest(unsigned v) { int h = -1; while (v) { h++; v >>= 1; } return h; }
unsigned reverse_bits(unsigned v) { unsigned r = 0; for (int i = 0; i < 32; i++) { r = (r << 1) | (v & 1u); v >>= 1; } return r; }

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s N\n", argv[0]); return 1; }
    unsigned v = (unsigned)strtoul(argv[1], NULL, 10);
    printf("popcount %d\nhighest %d\nreversed 0x%08x\npower_of_two %s\n", popcount(v), highest(v),
           reverse_bits(v), (v && !(v & (v - 1))) ? "yes" : "no");
    return 0;
}
