//! `ccoctl`: see the library crate for the commands.

fn main() -> std::process::ExitCode {
    ccoctl::run()
}
