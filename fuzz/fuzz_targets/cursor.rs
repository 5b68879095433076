#![no_main]

// The checks live in checks/cursor.rs so the stable replay test runs exactly the same code.
#[path = "../checks/cursor.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
