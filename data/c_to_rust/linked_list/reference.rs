use std::env;

struct Node {
    value: i32,
    next: Option<Box<Node>>,
}

fn reverse(mut head: Option<Box<Node>>) -> Option<Box<Node>> {
    let mut prev = None;
    while let Some(mut node) = head {
        head = node.next.take();
        node.next = prev;
        prev = Some(node);
    }
    prev
}

fn main() {
    let args: Vec<i32> = env::args().skip(1).map(|a| a.trim().parse().unwrap_or(0)).collect();
    let mut head: Option<Box<Node>> = None;
    for &v in args.iter().rev() {
        head = Some(Box::new(Node { value: v, next: head }));
    }
    head = reverse(head);
    let mut sum: i64 = 0;
    let mut parts = Vec::new();
    let mut cur = &head;
    while let Some(node) = cur {
        parts.push(node.value.to_string());
        sum += i64::from(node.value);
        cur = &node.next;
    }
    if parts.is_empty() {
        println!("empty");
    } else {
        println!("{}", parts.join(" -> "));
    }
    println!("sum {}", sum);
}
