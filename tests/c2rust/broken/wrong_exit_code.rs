use std::io::Read;
fn main() {
    // Reads stdin and prints nothing useful, then exits 3: wrong output or wrong exit code, never a pass.
    let mut s = String::new();
    let _ = std::io::stdin().read_to_string(&mut s);
    std::process::exit(3);
}
