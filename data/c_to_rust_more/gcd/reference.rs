use std::process;

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

// strtoul(s, NULL, 10): leading spaces, optional sign, digits up to the first other character
fn strtoul(s: &str) -> u64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: u64 = 0;
    for b in digits.bytes().take_while(|b| b.is_ascii_digit()) {
        v = v.wrapping_mul(10).wrapping_add((b - b'0') as u64);
    }
    if neg { v.wrapping_neg() } else { v }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 || args.len() % 2 == 0 {
        eprintln!("usage: {} A B [A B]...", args[0]);
        process::exit(2);
    }
    let mut i = 1;
    while i + 1 < args.len() {
        let (a, b) = (strtoul(&args[i]), strtoul(&args[i + 1]));
        println!("gcd({}, {}) = {}", a, b, gcd(a, b));
        i += 2;
    }
}
