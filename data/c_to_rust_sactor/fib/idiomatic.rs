// The second stage: the same behaviour in safe, idiomatic Rust (builds with -F unsafe_code).
use std::process::ExitCode;

fn fib(n: u32) -> u64 {
    (0..n).fold((0u64, 1u64), |(a, b), _| (b, a + b)).0
}

fn main() -> ExitCode {
    let Some(arg) = std::env::args().nth(1) else {
        eprintln!("usage: fib N");
        return ExitCode::from(1);
    };
    // atoi semantics: leading digits (with a sign), anything else is 0
    let t = arg.trim_start();
    let (sign, digits) = match t.strip_prefix('-') {
        Some(rest) => (-1i64, rest),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let num: String = digits.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n = sign * num.parse::<i64>().unwrap_or(0);
    if !(0..=92).contains(&n) {
        eprintln!("n out of range: {n}");
        return ExitCode::from(2);
    }
    println!("fib({n}) = {}", fib(n as u32));
    ExitCode::SUCCESS
}
