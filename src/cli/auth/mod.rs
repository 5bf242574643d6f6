//! `spec-kitty auth …`: one file per command; this module only lists and dispatches them.

mod login;
mod logout;
mod status;

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    Login(login::LoginArgs),
    Logout(logout::LogoutArgs),
    Status(status::StatusArgs),
}

pub fn run(cmd: AuthCommand) -> miette::Result<ExitCode> {
    match cmd {
        AuthCommand::Login(a) => login::run(a),
        AuthCommand::Logout(a) => logout::run(a),
        AuthCommand::Status(a) => status::run(a),
    }
}
