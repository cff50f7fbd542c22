//! Who wrote a version of an artifact: an [`Author`] and, for an agent's output, the
//! task it was written in.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::TaskId;

/// Who wrote a version. Serialised as the journal's `by` string; `human` and `external`
/// are reserved (the config refuses them as agent names), so the mapping is one to one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Author {
    /// A person: `baton drop`, `baton write` outside a task, `baton approve`.
    Human,
    /// Found in a stage with no record of who wrote it (written outside baton).
    External,
    /// The agent of this name.
    Agent(String),
}

impl Author {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Author::Human => "human",
            Author::External => "external",
            Author::Agent(name) => name,
        }
    }
}

impl From<&str> for Author {
    fn from(by: &str) -> Author {
        match by {
            "human" => Author::Human,
            "external" => Author::External,
            agent => Author::Agent(agent.to_string()),
        }
    }
}

impl fmt::Display for Author {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Author {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Author {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Author, D::Error> {
        let by = String::deserialize(d)?;
        Ok(Author::from(by.as_str()))
    }
}

/// Who wrote a version, and in which task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attribution {
    pub(crate) by: Author,
    /// The task whose commit (or `baton write`) published it; `None` for a person's
    /// or an unknown writer's.
    pub(crate) task: Option<TaskId>,
}

impl Attribution {
    pub(crate) fn human() -> Attribution {
        Attribution {
            by: Author::Human,
            task: None,
        }
    }

    pub(crate) fn external() -> Attribution {
        Attribution {
            by: Author::External,
            task: None,
        }
    }

    /// An agent's output in `task`.
    pub(crate) fn agent(agent: &str, task: &TaskId) -> Attribution {
        Attribution {
            by: Author::Agent(agent.to_string()),
            task: Some(task.clone()),
        }
    }

    /// The task as the index stores it: empty for none.
    pub(crate) fn task_str(&self) -> &str {
        self.task.as_ref().map_or("", TaskId::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authors_are_the_journal_strings_one_to_one() {
        for (text, author) in [
            ("human", Author::Human),
            ("external", Author::External),
            ("writer", Author::Agent("writer".into())),
        ] {
            let json = format!("\"{text}\"");
            assert_eq!(serde_json::to_string(&author).unwrap(), json);
            assert_eq!(serde_json::from_str::<Author>(&json).unwrap(), author);
            assert_eq!(Author::from(text), author);
        }
    }
}
