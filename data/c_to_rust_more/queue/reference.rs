use std::io::BufRead;

const CAP: usize = 4;

struct Queue {
    items: [i32; CAP],
    head: usize,
    len: usize,
}

impl Queue {
    fn push(&mut self, v: i32) -> bool {
        if self.len == CAP {
            return false;
        }
        self.items[(self.head + self.len) % CAP] = v;
        self.len += 1;
        true
    }

    fn pop(&mut self) -> Option<i32> {
        if self.len == 0 {
            return None;
        }
        let v = self.items[self.head];
        self.head = (self.head + 1) % CAP;
        self.len -= 1;
        Some(v)
    }
}

// sscanf(line, "push %d"): "push", any whitespace, then an optionally signed integer
fn parse_push(line: &str) -> Option<i32> {
    let rest = line.strip_prefix("push")?.trim_start();
    let end = rest
        .char_indices()
        .take_while(|&(i, c)| c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+')))
        .count();
    rest[..end].parse().ok()
}

fn main() {
    let mut q = Queue { items: [0; CAP], head: 0, len: 0 };
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        if let Some(v) = parse_push(&line) {
            println!("{}", if q.push(v) { "ok" } else { "full" });
        } else if line.starts_with("pop") {
            match q.pop() {
                Some(v) => println!("{v}"),
                None => println!("empty"),
            }
        } else if line.starts_with("size") {
            println!("{}", q.len);
        } else {
            eprintln!("bad command");
            std::process::exit(2);
        }
    }
}
