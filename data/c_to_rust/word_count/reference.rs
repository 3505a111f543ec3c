use std::io::{self, Read};

fn main() {
    let mut input = Vec::new();
    io::stdin().read_to_end(&mut input).unwrap();
    let lines = input.iter().filter(|&&b| b == b'\n').count();
    let mut words = 0;
    let mut longest: &[u8] = b"";
    for w in input.split(|b| b.is_ascii_whitespace() || *b == 0x0b).filter(|w| !w.is_empty()) {
        words += 1;
        let w = &w[..w.len().min(63)];
        if w.len() > longest.len() {
            longest = w;
        }
    }
    println!("{} {} {}", lines, words, input.len());
    println!("longest {}", String::from_utf8_lossy(longest));
}
