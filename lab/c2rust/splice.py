"""A repair that replies with only what it changed: the items it left out are taken from the program it repairs.

Small models often answer "fix this" with the one function they changed: the 1.5B's round-3 repair of
reverse_string was a new `main` alone (`cannot find function reverse`), after a round-2 program that passed 2 of 3
cases. The loop checks such a reply as it is and, where it does not compile, also with the previous program's
missing items spliced back in, and keeps whichever gets further."""

from __future__ import annotations

import re

# A top-level item's header at column 0 (rustfmt's shape, which models reply in): visibility and qualifiers, then
# its kind and name. `impl` blocks and `use` lines are keyed by their whole header instead.
ITEM = re.compile(r'(?:pub(?:\([^)]*\))?\s+)?(?:(?:unsafe|const|async|extern\s+"[^"]*")\s+)*'
                  r"(fn|struct|enum|const|static|type|trait|union|mod)\s+(?:mut\s+)?(\w+)")
ATTRIBUTE = ("#[", "///")  # lines that belong to the item below them
USE = ("use ", "pub use ")  # imports: keyed by the whole line, ended by their `;`, not spliced alone


def _key(line: str) -> str | None:
    """What names the item that starts on this line ('fn main', 'impl Stack', 'use std::io::Read;'), or None."""
    if line[:1].isspace() or not line.strip():
        return None
    if line.startswith(USE):
        return " ".join(line.split())
    if re.match(r"(?:unsafe\s+)?impl\b", line):
        return " ".join(line.split("{")[0].split())
    m = ITEM.match(line)
    return f"{m.group(1)} {m.group(2)}" if m else None


def _end(lines: list[str], i: int) -> int | None:
    """The index of the last line of the item starting at line i; None where its end cannot be found."""
    head = lines[i].split("//")[0].rstrip()
    if head.count("{") and head.count("{") == head.count("}"):
        return i  # `struct Empty {}`, `fn f() -> i32 { 1 }`
    if "{" not in head and head.endswith(";"):
        return i  # `const N: usize = 10;`, `use std::io::Read;`
    is_use = lines[i].startswith(USE)
    for j in range(i + 1, len(lines)):  # a `use` ends at its `;` (`};`), anything else at a `}` in column 0
        if lines[j].rstrip().endswith(";") if is_use else lines[j].startswith("}"):
            return j
    return None


def items(src: str) -> dict[str, str] | None:
    """The top-level items of a rustfmt-shaped program by key, each with the attributes and doc comments above it;
    None where the program's shape cannot be read (an item with no closing line at column 0)."""
    lines = src.splitlines(keepends=True)
    found: dict[str, str] = {}
    above: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(ATTRIBUTE):
            above.append(line)
            i += 1
            continue
        key = _key(line)
        if key is None:
            above, i = [], i + 1
            continue
        end = _end(lines, i)
        if end is None:
            return None
        body = "".join(above + lines[i:end + 1])
        found[key] = body if body.endswith("\n") else body + "\n"
        above, i = [], end + 1
    return found


def merge(previous: str, reply: str) -> tuple[str, list[str]] | None:
    """The reply with the items of `previous` it lacks (their `use` lines first, the rest after it), and the names
    of the items added; None when it lacks no function, type or constant of `previous` or either cannot be read."""
    before, now = items(previous), items(reply)
    if not before or now is None:
        return None
    missing = [k for k in before if k not in now]
    named = [k for k in missing if not k.startswith(USE)]
    if not named:
        return None  # only imports differ: rustc's suggestions add those (build.fix)
    uses = "".join(before[k] for k in missing if k.startswith(USE))
    rest = "\n".join(before[k] for k in named)
    return f"{uses + chr(10) if uses else ''}{reply.rstrip()}\n\n{rest}", named
