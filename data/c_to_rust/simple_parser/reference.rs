use std::env;
use std::process;

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> u8 {
        *self.s.get(self.pos).unwrap_or(&0)
    }
    fn skip(&mut self) {
        while self.peek() == b' ' {
            self.pos += 1;
        }
    }
    fn factor(&mut self) -> i64 {
        self.skip();
        match self.peek() {
            b'(' => {
                self.pos += 1;
                let v = self.expr();
                self.skip();
                if self.peek() == b')' {
                    self.pos += 1;
                } else {
                    self.failed = true;
                }
                v
            }
            b'-' => {
                self.pos += 1;
                -self.factor()
            }
            c if c.is_ascii_digit() => {
                let mut v: i64 = 0;
                while self.peek().is_ascii_digit() {
                    v = v * 10 + i64::from(self.peek() - b'0');
                    self.pos += 1;
                }
                v
            }
            _ => {
                self.failed = true;
                0
            }
        }
    }
    fn term(&mut self) -> i64 {
        let mut v = self.factor();
        loop {
            self.skip();
            match self.peek() {
                b'*' => {
                    self.pos += 1;
                    v *= self.factor();
                }
                b'/' => {
                    self.pos += 1;
                    let d = self.factor();
                    if d == 0 {
                        eprintln!("error: division by zero");
                        process::exit(2);
                    }
                    v /= d;
                }
                _ => return v,
            }
        }
    }
    fn expr(&mut self) -> i64 {
        let mut v = self.term();
        loop {
            self.skip();
            match self.peek() {
                b'+' => {
                    self.pos += 1;
                    v += self.term();
                }
                b'-' => {
                    self.pos += 1;
                    v -= self.term();
                }
                _ => return v,
            }
        }
    }
}

fn main() {
    let args: Vec<String> = env::args().collect();
    if args.len() != 2 {
        eprintln!("usage: {} EXPR", args[0]);
        process::exit(1);
    }
    let mut p = Parser { s: args[1].as_bytes(), pos: 0, failed: false };
    let v = p.expr();
    p.skip();
    if p.failed || p.pos < p.s.len() {
        eprintln!("error: syntax at '{}'", &args[1][p.pos.min(args[1].len())..]);
        process::exit(2);
    }
    println!("{}", v);
}
