#![no_main]

// The checks live in checks/jii.rs so the stable replay test runs exactly the same code.
#[path = "../checks/jii.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
