use std::io::{self, Read};
use std::process;

fn main() {
    let mut input = String::new();
    io::stdin().read_to_string(&mut input).unwrap();
    let mut it = input.split_whitespace().map(|t| t.parse::<i64>());
    let n = match it.next() {
        Some(Ok(n)) if (1..=10).contains(&n) => n as usize,
        _ => {
            eprintln!("bad size");
            process::exit(1);
        }
    };
    let mut read = |count: usize| -> Vec<i64> {
        (0..count)
            .map(|_| match it.next() {
                Some(Ok(v)) => v,
                _ => process::exit(1),
            })
            .collect()
    };
    let a = read(n * n);
    let b = read(n * n);
    let mut trace = 0;
    for i in 0..n {
        let row: Vec<String> = (0..n)
            .map(|j| (0..n).map(|k| a[i * n + k] * b[k * n + j]).sum::<i64>().to_string())
            .collect();
        trace += (0..n).map(|k| a[i * n + k] * b[k * n + i]).sum::<i64>();
        println!("{}", row.join(" "));
    }
    println!("trace {}", trace);
}
