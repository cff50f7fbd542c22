//! Integration tests: the real `baton` binary against temporary workspaces, with
//! shell-script agents. One test binary; a module per topic.

mod fixtures;
mod harness;

mod agents;
mod commands;
mod config;
mod control;
mod delegation;
mod docs;
mod examples;
mod fallback;
mod governance;
mod help;
mod history;
mod hostile;
mod joins;
mod locks;
mod logs;
mod mcp;
mod readiness;
mod recovery;
mod regression;
mod sandbox;
mod search;
mod starting;
mod ui;
mod versions;
