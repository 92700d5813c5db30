//! The `clasp` binary: `clasp relay` runs a router. Errors end here as `anyhow` with context.

mod auth_cmd;
mod bridge_cmd;
mod cli;
mod client_cmd;
mod config_file;
mod console;
mod discovery_cmd;
mod token_cmd;

use clap::Parser;

/// `clasp config check FILE`: the same expansion and checks `clasp relay --config FILE`
/// runs, without starting anything.
fn config_cmd_check(file: &std::path::Path) -> anyhow::Result<()> {
    let argv = ["clasp", "relay", "--config"]
        .map(std::ffi::OsString::from)
        .into_iter()
        .chain([file.as_os_str().to_owned()])
        .collect();
    let (argv, bridges) = config_file::expand(argv)?;
    let cli = cli::Cli::try_parse_from(argv)?;
    let cli::Command::Relay(args) = cli.command else {
        anyhow::bail!("not a relay command line");
    };
    for bridge in &bridges {
        bridge.check()?;
    }
    args.bridges.check()?;
    args.into_config()?;
    println!("{}: ok ({} bridges)", file.display(), bridges.len());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let original: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (argv, file_bridges) = match config_file::expand(original.clone()) {
        Ok(expanded) => expanded,
        Err(e) => {
            eprintln!("clasp: config: {e}");
            std::process::exit(2);
        }
    };
    let cli = cli::Cli::parse_from(argv);
    match cli.command {
        cli::Command::Relay(args) => {
            let log = cli::init_logging(&args.log_level, args.verbose, args.log_format)?;
            bridge_cmd::run_relay(args, file_bridges, log, original)?;
        }
        cli::Command::Config(cli::ConfigCommand::Example) => print!("{}", config_file::example()),
        cli::Command::Config(cli::ConfigCommand::Check { file }) => {
            if let Err(e) = config_cmd_check(&file) {
                eprintln!("clasp: {e:#}");
                std::process::exit(1);
            }
        }
        cli::Command::Discover(args) => {
            cli::init_logging("warn", false, cli::LogFormat::Text)?;
            let timeout = std::time::Duration::from_secs(cli.conn.timeout.max(1));
            let code = discovery_cmd::run(args, timeout)?;
            std::process::exit(code);
        }
        cli::Command::Bridge(cmd) => {
            cli::init_logging("info", false, cli::LogFormat::Text)?;
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
