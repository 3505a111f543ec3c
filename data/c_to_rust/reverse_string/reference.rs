use std::env;
use std::process;

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    for a in &args {
        let r: String = a.chars().rev().collect();
        println!("{} ({})", r, r.len());
    }
    if args.is_empty() {
        process::exit(1);
    }
}
