/* Evaluate an integer expression with + - * / and parentheses (recursive descent). */
#include <stdio.h>
#include <stdlib.h>

static const char *p;
static int failed;

static long expr(void);
static void skip(void) { while (*p == ' ') p++; }

static long factor(void) {
    skip();
    if (*p == '(') { p++; long v = expr(); skip(); if (*p == ')') p++; else failed = 1; return v; }
    if (*p == '-') { p++; return -factor(); }
    if (*p < '0' || *p > '9') { failed = 1; return 0; }
    long v = 0;
    while (*p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
    return v;
}

static long term(void) {
    long v = factor();
    for (;;) {
        skip();
        if (*p == '*') { p++; v *= factor(); }
        else if (*p == '/') {
            p++; long d = factor();
            if (d == 0) { fprintf(stderr, "error: division by zero\n"); exit(2); }
            v /= d;
        } else return v;
    }
}

static long expr(void) {
    long v = term();
    for (;;) {
        skip();
        if (*p == '+') { p++; v += term(); }
        else if (*p == '-') { p++; v -= term(); }
        else return v;
    }
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s EXPR\n", argv[0]); return 1; }
    p = argv[1];
    long v = expr();
    skip();
    if (failed || *p) { fprintf(stderr, "error: syntax at '%s'\n", p); return 2; }
    printf("%ld\n", v);
    return 0;
}
