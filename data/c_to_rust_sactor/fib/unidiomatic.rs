// A SACToR-style first-stage translation: C semantics kept through the libc crate (atoi, printf).
use std::ffi::CString;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprintln!("usage: fib N");
        std::process::exit(1);
    }
    let arg = CString::new(args[1].as_str()).unwrap();
    let n: libc::c_int = unsafe { libc::atoi(arg.as_ptr()) };
    if !(0..=92).contains(&n) {
        eprintln!("n out of range: {}", n);
        std::process::exit(2);
    }
    let (mut a, mut b): (libc::c_longlong, libc::c_longlong) = (0, 1);
    for _ in 0..n {
        let t = a + b;
        a = b;
        b = t;
    }
    let fmt = CString::new("fib(%d) = %lld\n").unwrap();
    unsafe {
        libc::printf(fmt.as_ptr(), n, a);
    }
}
