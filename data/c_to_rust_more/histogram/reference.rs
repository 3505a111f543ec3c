use std::io::Read;

fn main() {
    let mut counts = [0usize; 11];
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input).unwrap();
    let mut len = 0usize;
    for &c in &input {
        if c.is_ascii_alphabetic() {
            len += 1;
        } else if len > 0 {
            counts[len.min(10)] += 1;
            len = 0;
        }
    }
    if len > 0 {
        counts[len.min(10)] += 1;
    }
    for (i, &n) in counts.iter().enumerate().skip(1) {
        if n == 0 {
            continue;
        }
        println!("{:2}{} |{} {}", i, if i == 10 { "+" } else { " " }, "#".repeat(n), n);
    }
}
