"""lab.c2rust.splice: a repair that replies with only what it changed gets the rest of the program it repairs."""

from lab.c2rust import splice

BEFORE = '''use std::io::{self, Read};

/// Twice x.
#[inline]
fn twice(x: i32) -> i32 {
    x + 2
}

#[derive(Debug)]
struct P(i32);

impl P {
    fn get(&self) -> i32 {
        self.0
    }
}

const N: usize = 3;

fn main() {
    let mut s = String::new();
    io::stdin().read_to_string(&mut s).unwrap();
    println!("{}", twice(P(21).get()) + N as i32);
}
'''


def test_items_are_read_with_their_attributes_by_kind_and_name():
    found = splice.items(BEFORE)
    assert list(found) == ["use std::io::{self, Read};", "fn twice", "struct P", "impl P", "const N", "fn main"]
    assert found["fn twice"].startswith("/// Twice x.\n#[inline]\nfn twice") and found["fn twice"].endswith("}\n")
    assert found["impl P"].count("fn get") == 1 and found["struct P"] == "#[derive(Debug)]\nstruct P(i32);\n"
    assert list(splice.items("use std::{\n    io,\n    fmt,\n};\nfn main() {}\n")) == ["use std::{", "fn main"]
    assert splice.items("fn main() {\n    println!(\"never closed\");\n") is None  # no `}` in column 0


def test_a_reply_of_one_function_gets_the_rest_of_the_program_it_repairs():
    fixed = "fn twice(x: i32) -> i32 {\n    2 * x\n}\n"
    whole, added = splice.merge(BEFORE, fixed)
    assert added == ["struct P", "impl P", "const N", "fn main"]
    assert whole.startswith("use std::io::{self, Read};\n\nfn twice(x: i32) -> i32 {\n    2 * x\n}\n")
    assert whole.count("fn twice") == 1 and "x + 2" not in whole  # the reply's version wins
    assert list(splice.items(whole)) == ["use std::io::{self, Read};", "fn twice", "struct P", "impl P", "const N",
                                         "fn main"]
    assert splice.merge(BEFORE, BEFORE) is None  # nothing left out
    assert splice.merge(BEFORE, BEFORE.replace("use std::io::{self, Read};\n", "")) is None  # imports: rustc's job
    assert splice.merge("fn main() {\n", fixed) is None  # a previous program that cannot be read: nothing spliced
