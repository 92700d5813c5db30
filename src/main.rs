//! The `clasp` binary: `clasp relay` runs a router. Errors end here as `anyhow` with context.

mod auth_cmd;
mod bridge_cmd;
mod cli;
mod client_cmd;
mod token_cmd;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Relay(args) => {
            cli::init_logging(&args.log_level, args.verbose)?;
            bridge_cmd::run_relay(args)?;
        }
        cli::Command::Bridge(cmd) => {
            cli::init_logging("info", false)?;
            bridge_cmd::run_standalone(cli.conn, cmd)?;
        }
        cli::Command::Auth(cmd) => {
            if let Err(f) = auth_cmd::run(cli.conn, cmd) {
                eprintln!("clasp: {}", f.message);
                std::process::exit(f.code);
            }
        }
        cli::Command::Key(cmd) => {
            if let Err(f) = token_cmd::run_key(cmd) {
                eprintln!("clasp: {}", f.message);
                std::process::exit(f.code);
            }
        }
        cli::Command::Token(cmd) => {
            if let Err(f) = token_cmd::run_token(cmd) {
                eprintln!("clasp: {}", f.message);
                std::process::exit(f.code);
            }
        }
        cli::Command::Client(cmd) => {
            if let Err(f) = client_cmd::run(cli.conn, cmd) {
                eprintln!("clasp: {}", f.message);
                std::process::exit(f.code);
            }
        }
    }
    Ok(())
}
