"""Where a compiled Rust program differs from its C source in ways tests only show as wrong output: a `for` counter
changed in the loop's body, printf's padding lost. Each note names the lines, for the feedback."""

from __future__ import annotations

import re
from itertools import islice

from lab.c2rust.advice import blanked, block_ends, lines_of

# a header of at most 300 characters, as advice.LOOP (unbounded, `for`s without a "{" made the search quadratic)
FOR = re.compile(r"\bfor\s+\(?\s*(?:mut\s+)?([A-Za-z_]\w*)\s*\)?\s+in\b\s*([^{;]{0,300}?)\s*\{")
RANGE = re.compile(r"(.+?)\s*\.\.\s*([^=.].*)")  # a..b, not a..=b
MOST = 3  # lines named per note: the 1.5B fixes the first ones it is shown
# loops looked into: each costs a search of its body; a real program has tens, a hostile reply of 20,000 took
# 35 s before this bound
MAX_LOOPS = 200


def counter_assigned(rust: str) -> str:
    """A note for each `for x in ...` loop whose body assigns x (`x = j;`, `x += 2;`): C's `for (i = 0; i < n;)
    { ...; i = j; }` kept as a Rust for loop, which ignores the assignment (rustc only warns "value assigned is
    never read"). The 1.5B's run-length encoder did this for four rounds beside the sheet line on it (2026-12-07);
    "" when no loop does."""
    code, found, line = blanked(rust), [], lines_of(rust)
    ends = block_ends(code)
    for m in islice(FOR.finditer(code), MAX_LOOPS):
        name, end = m.group(1), ends[m.end()]
        if re.compile(rf"\blet\s+(?:mut\s+)?{name}\b").search(code, m.end(), end):  # shadowed: another variable
            continue
        hit = re.compile(rf"(?<![\w.]){name}\s*(?:[-+*/%]|<<|>>)?=(?!=)").search(code, m.end(), end)
        if hit:
            (ln, text), (fl, _) = line(hit.start()), line(m.start())
            found.append(f"line {ln} `{text}` changes `{name}`, the counter of the for loop on line {fl}")
            # the line to write instead, spelled out: told the pattern alone, the 1.5B kept its for loop
            bounds = RANGE.fullmatch(rust[m.start(2):m.end(2)])
            if bounds:
                a, b = bounds.groups()
                found[-1] += (f": replace `{rust[m.start():m.end()]}` with `let mut {name} = {a}; while {name} < {b} "
                              f"{{`")
            if len(found) == MOST:
                break
    if not found:
        return ""
    return ("A Rust `for` loop ignores assignments to its counter (the next turn takes the next value of the "
            "range): " + "; ".join(found) + ". Where C changes its counter in the body (or has no "
            "increment), write a `while` loop: `let mut i = 0; while i < n { ...; i = j; }`, with `i += 1;` at "
            "the end of the body only where C's for has that increment.\n")


# printf's conversions with a width, a precision or a flag: the ones whose Rust spelling is not a plain {}
CONVERSION = r"%([-+ #0]*)(\d+)?(?:\.(\d+))?(?:hh|h|ll|l|z|j|t|L)?([dioxXufFeEgGcs])"
SPEC = re.compile(r"(?<!%)" + CONVERSION)
FORMAT_ITEM = re.compile(r"%%|" + CONVERSION)  # a format read left to right: %% is a literal %
PRINTF = re.compile(r"\b\w*printf\s*\(")


def rust_spec(flags: str, width: str | None, precision: str | None, kind: str) -> str | None:
    """The Rust format spec (`{:>5}`) for one printf conversion, or None when it needs none beyond `{}`."""
    if kind in "gG" or not (width or precision is not None or set(flags) & set("+#")):
        return None  # %g has no Rust spec
    align = "<" if "-" in flags else (">" if kind in "sc" and width else "")  # Rust pads text on the left side
    zero = "0" if "0" in flags and "-" not in flags and kind not in "sc" else ""
    sign = "+" if "+" in flags and kind not in "sxXuoc" else ""
    alt = "#" if "#" in flags and kind in "xXo" else ""
    prec = f".{precision}" if precision is not None and kind in "fFeEgGs" else ""
    letter = {"x": "x", "X": "X", "o": "o", "e": "e", "E": "E"}.get(kind, "")
    return "{:" + align + sign + alt + zero + (width or "") + prec + letter + "}"


def rust_formats(body: str) -> tuple[str, str]:
    """A printf format's body as Rust format strings: every conversion as `{}`, then with its spec (`{:2}`)."""
    plain, fixed, at = [], [], 0
    for m in FORMAT_ITEM.finditer(body):
        text = body[at:m.start()].replace("{", "{{").replace("}", "}}")
        spec = "%" if m.group(0) == "%%" else (rust_spec(*m.groups()) or "{}")
        plain += [text, "%" if spec == "%" else "{}"]
        fixed += [text, spec]
        at = m.end()
    tail = body[at:].replace("{", "{{").replace("}", "}}")
    return "".join(plain) + tail, "".join(fixed) + tail


def _rewrite(body: str, rust: str) -> str:
    """`in your program write "{:2}-{:2} |" for "{}-{} |"` where the Rust program holds this format without its
    specs (a trailing \\n may have gone to println!); "" where it does not."""
    plain, fixed = rust_formats(body)
    for p, f in ((plain, fixed), (plain.removesuffix("\\n"), fixed.removesuffix("\\n"))):
        if p and f'"{p}"' in rust:
            return f' (in your program write "{f}" for "{p}")'
    return ""


def lost_widths(c_src: str, rust: str) -> str:
    """A note naming the C lines whose printf pads or rounds (`%2d`, `%-8s`, `%.2f`) where the Rust program has no
    matching spec anywhere (the 1.5B's histogram printed `{}-{}` for "%2d-%2d" for four rounds, and its sheet line
    on widths did not help); "" when every one has its match."""
    code, line = blanked(c_src, strings=False), lines_of(c_src)  # comments blanked, strings kept
    lines: dict[int, tuple[str, list[str], list[str]]] = {}  # {line: (text, specs, swaps)}
    kept: dict[str, bool] = {}  # rust spec -> the Rust program has it
    in_printf, prev = False, 0  # the statement so far calls a printf: scanf's "%15s" bounds a read, no padding
    for tok in re.finditer(r"[;{}]|'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"", code):  # one pass, in order
        in_printf = tok.group(0) not in ";{}" and (in_printf or bool(PRINTF.search(code, prev, tok.start())))
        prev = tok.end()
        lost = False
        for spec in SPEC.finditer(tok.group(0) if tok.group(0)[0] == '"' and in_printf else ""):
            want = rust_spec(*spec.groups())
            if want is not None and want not in kept:  # {:2} and {:>2} pad a number alike; `{n:2}` names it
                kept[want] = bool(re.search(r"\{[\w.]*:" + (">?" if want[2] not in "<>" else "")
                                            + re.escape(want[2:]), rust))
            if want is None or kept[want]:
                continue
            ln, text = line(tok.start())
            if ln not in lines and len(lines) == MOST:
                break
            specs = lines.setdefault(ln, (text, [], []))[1]
            if f"{spec.group(0)} is {want}" not in specs:
                specs.append(f"{spec.group(0)} is {want}")
            lost = True
        swap = _rewrite(tok.group(0)[1:-1], rust) if lost else ""  # once per format, not per conversion
        if swap and swap not in lines[ln][2]:
            lines[ln][2].append(swap)
    found = [f"line {ln} `{text}`: {', '.join(specs)}{''.join(swaps)}" for ln, (text, specs, swaps) in lines.items()]
    if not found:
        return ""
    return ("Your output loses the C program's padding or rounding; printf's widths have Rust specs: "
            + "; ".join(found) + " (Rust right-aligns numbers but left-aligns text: C's %5s is {:>5}).\n")
