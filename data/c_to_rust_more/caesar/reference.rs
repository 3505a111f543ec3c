use std::io::{Read, Write};

fn shift_char(c: u8, k: u8) -> u8 {
    match c {
        b'a'..=b'z' => b'a' + (c - b'a' + k) % 26,
        b'A'..=b'Z' => b'A' + (c - b'A' + k) % 26,
        _ => c,
    }
}

// atoi: leading spaces, optional sign, digits up to the first other character
fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (sign, digits) = match s.as_bytes().first() {
        Some(b'-') => (-1, &s[1..]),
        Some(b'+') => (1, &s[1..]),
        _ => (1, s),
    };
    let mut v: i64 = 0;
    for b in digits.bytes().take_while(|b| b.is_ascii_digit()) {
        v = v * 10 + (b - b'0') as i64;
    }
    sign * v
}

fn main() {
    let k = std::env::args().nth(1).map(|a| atoi(&a)).unwrap_or(3);
    let k = (((k % 26) + 26) % 26) as u8;
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input).unwrap();
    let out: Vec<u8> = input.iter().map(|&c| shift_char(c, k)).collect();
    std::io::stdout().write_all(&out).unwrap();
}
