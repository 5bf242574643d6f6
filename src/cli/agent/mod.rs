//! `spec-kitty agent …`: the commands agents (and people) run inside the workflow.

mod add_history;
mod finalize_tasks;
mod mark_status;
mod move_task;

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Feature-level commands.
    #[command(subcommand)]
    Feature(FeatureCommand),
    /// Work package status and history.
    #[command(subcommand)]
    Tasks(TasksCommand),
}

#[derive(Debug, Subcommand)]
pub enum FeatureCommand {
    FinalizeTasks(finalize_tasks::FinalizeTasksArgs),
}

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    MoveTask(move_task::MoveTaskArgs),
    MarkStatus(mark_status::MarkStatusArgs),
    AddHistory(add_history::AddHistoryArgs),
}

pub fn run(dir: &Path, cmd: AgentCommand) -> miette::Result<ExitCode> {
    match cmd {
        AgentCommand::Feature(FeatureCommand::FinalizeTasks(a)) => finalize_tasks::run(dir, a),
        AgentCommand::Tasks(TasksCommand::MoveTask(a)) => move_task::run(dir, a),
        AgentCommand::Tasks(TasksCommand::MarkStatus(a)) => mark_status::run(dir, a),
        AgentCommand::Tasks(TasksCommand::AddHistory(a)) => add_history::run(dir, a),
    }
}
