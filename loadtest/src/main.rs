//! `switchboard-loadtest`: see the library's code map and `--help`.

use clap::Parser;

fn main() {
    let cli = switchboard_loadtest::cli::Cli::parse();
    std::process::exit(switchboard_loadtest::main_with(cli));
}
