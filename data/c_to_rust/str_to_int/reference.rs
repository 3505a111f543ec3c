use std::env;
use std::process;

fn parse(s: &str) -> i64 {
    let s = s.trim_start_matches(' ');
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'-') => (-1, &s[1..]),
        Some(b'+') => (1, &s[1..]),
        _ => (1, s),
    };
    let mut value: i64 = 0;
    for b in rest.bytes() {
        if !b.is_ascii_digit() {
            break;
        }
        value = value * 10 + i64::from(b - b'0');
    }
    sign * value
}

fn main() {
    let args: Vec<String> = env::args().collect();
    if args.len() < 2 {
        eprintln!("usage: {} NUMBER...", args[0]);
        process::exit(1);
    }
    for a in &args[1..] {
        println!("{}", parse(a));
    }
}
