//! Terminal styling: colour only on a terminal and never with `NO_COLOR` (DESIGN §9).

use std::io::IsTerminal;

/// Terminal styling: colour only on a terminal and never with `NO_COLOR`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub(crate) color: bool,
}

impl Style {
    pub(crate) fn stdout() -> Style {
        Style {
            color: std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
    pub(crate) fn stderr() -> Style {
        Style {
            color: std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    pub(crate) fn bold(self, t: &str) -> String {
        self.paint("1", t)
    }
    pub(crate) fn dim(self, t: &str) -> String {
        self.paint("2", t)
    }
    pub(crate) fn green(self, t: &str) -> String {
        self.paint("32", t)
    }
    pub(crate) fn red(self, t: &str) -> String {
        self.paint("31", t)
    }
    pub(crate) fn yellow(self, t: &str) -> String {
        self.paint("33", t)
    }
    pub(crate) fn cyan(self, t: &str) -> String {
        self.paint("36", t)
    }
}
