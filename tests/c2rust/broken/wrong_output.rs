fn main() {
    println!("42");
}
