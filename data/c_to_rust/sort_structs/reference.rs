use std::io::{self, Read};

struct Person {
    name: String,
    age: i32,
}

fn main() {
    let mut input = String::new();
    io::stdin().read_to_string(&mut input).unwrap();
    let tokens: Vec<&str> = input.split_whitespace().collect();
    let mut people = Vec::new();
    for pair in tokens.chunks(2) {
        if pair.len() < 2 || people.len() >= 100 {
            break;
        }
        match pair[1].parse::<i32>() {
            Ok(age) => people.push(Person { name: pair[0].chars().take(31).collect(), age }),
            Err(_) => break,
        }
    }
    people.sort_by(|p, q| p.age.cmp(&q.age).then_with(|| p.name.cmp(&q.name)));
    for (i, p) in people.iter().enumerate() {
        println!("{}. {} {}", i + 1, p.name, p.age);
    }
    println!("count {}", people.len());
}
