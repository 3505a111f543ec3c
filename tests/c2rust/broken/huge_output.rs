fn main() {
    loop {
        println!("all work and no play makes jack a dull boy");
    }
}
