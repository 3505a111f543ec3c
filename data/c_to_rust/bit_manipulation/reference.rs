use std::env;
use std::process;

fn main() {
    let args: Vec<String> = env::args().collect();
    if args.len() != 2 {
        eprintln!("usage: {} N", args[0]);
        process::exit(1);
    }
    let v: u32 = args[1].parse::<u64>().map(|x| x as u32).unwrap_or(0);
    let highest: i32 = if v == 0 { -1 } else { 31 - v.leading_zeros() as i32 };
    println!("popcount {}", v.count_ones());
    println!("highest {}", highest);
    println!("reversed 0x{:08x}", v.reverse_bits());
    println!("power_of_two {}", if v.is_power_of_two() { "yes" } else { "no" });
}
