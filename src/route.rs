//! PURE routing: an artifact version + the config + the journal's state → the tasks to
//! queue, or why none may run. No I/O, so every rule is unit-tested on plain data.

use crate::config::Config;
use crate::journal::{Reason, Record, State, task_id};
use crate::workspace::RelPath;

/// An artifact version that became visible, and what is known about it.
#[derive(Debug, Clone)]
pub struct Arrival<'a> {
    pub path: &'a RelPath,
    pub hash: &'a str,
    /// The task whose commit produced this version, if any.
    pub producer: Option<&'a str>,
    /// Front matter `to`: route to this agent only.
    pub to: Option<&'a str>,
}

/// What to journal for an arrival: tasks to queue, and refusals to record.
#[derive(Debug, Default, PartialEq)]
pub struct Routed {
    pub records: Vec<Record>,
}

pub fn route(cfg: &Config, state: &State, arrival: &Arrival) -> Routed {
    let mut routed = Routed::default();
    let reject = |error: String| Record::Rejected {
        path: arrival.path.clone(),
        hash: Some(arrival.hash.to_string()),
        error,
    };
    let (targets, reason): (Vec<&str>, Reason) = match arrival.to {
        Some(agent) if cfg.agents.contains_key(agent) => (vec![agent], Reason::To),
        Some(agent) => {
            let known = cfg
                .agents
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            routed.records.push(reject(format!(
                "`to = \"{agent}\"` names no agent: known agents are {known}"
            )));
            return routed;
        }
        None => (
            cfg.agents
                .values()
                .filter(|a| a.triggered_by(arrival.path))
                .map(|a| a.name.as_str())
                .collect(),
            Reason::Glob,
        ),
    };
    if targets.is_empty() {
        return routed;
    }
    let parent = arrival.producer.and_then(|p| state.tasks.get(p));
    let depth = parent.map_or(0, |p| p.depth + 1);
    for agent in targets {
        let id = task_id(agent, arrival.path, arrival.hash, arrival.producer);
        if state.tasks.contains_key(&id) {
            continue; // already handled: idempotent (DESIGN §4.3)
        }
        if depth > cfg.max_depth {
            routed.records.push(reject(format!(
                "not sent to `{agent}`: the delegation chain would be {depth} deep, over max_depth = {}",
                cfg.max_depth
            )));
            continue;
        }
        if let Some(looped) = cycle(state, arrival.producer, agent, arrival.hash) {
            routed.records.push(reject(format!(
                "not sent to `{agent}`: a cycle — task {looped} of `{agent}` already ran on this content in the same chain"
            )));
            continue;
        }
        routed.records.push(Record::Queued {
            task: id,
            agent: agent.to_string(),
            input: arrival.path.clone(),
            input_hash: arrival.hash.to_string(),
            parent: arrival.producer.map(str::to_string),
            depth,
            reason,
        });
    }
    routed
}

/// The ancestor task, if any, in which `agent` already ran on content `hash`.
fn cycle(state: &State, producer: Option<&str>, agent: &str, hash: &str) -> Option<String> {
    state
        .ancestors(producer)
        .find(|t| t.agent == agent && t.input_hash == hash)
        .map(|t| t.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Entry;
    use std::path::Path;

    fn cfg() -> Config {
        Config::parse(
            "[workspace]\nmax_depth = 2\n\
             [agents.writer]\non = [\"briefs/**/*.md\"]\nrun = \"true\"\n\
             [agents.reviewer]\non = [\"drafts/*.md\"]\nrun = \"true\"\n\
             [agents.legal]\nrun = \"true\"\n",
            Path::new("/"),
        )
        .unwrap()
    }

    fn p(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }

    fn queued_agents(r: &Routed) -> Vec<String> {
        r.records
            .iter()
            .filter_map(|r| match r {
                Record::Queued { agent, .. } => Some(agent.clone()),
                _ => None,
            })
            .collect()
    }

    fn apply(state: &mut State, records: Vec<Record>) {
        for (i, record) in records.into_iter().enumerate() {
            state.apply(&Entry {
                seq: state.last_seq + 1 + i as u64,
                ts: "2026-01-01T00:00:00Z".into(),
                record,
            });
        }
    }

    #[test]
    fn globs_pick_agents_and_ids_are_idempotent() {
        let cfg = cfg();
        let mut state = State::default();
        let path = p("briefs/sub/a.md");
        let arrival = Arrival {
            path: &path,
            hash: "h1",
            producer: None,
            to: None,
        };
        let r = route(&cfg, &state, &arrival);
        assert_eq!(queued_agents(&r), vec!["writer"]);
        apply(&mut state, r.records);
        assert!(
            route(&cfg, &state, &arrival).records.is_empty(),
            "the same version runs once"
        );
        let changed = Arrival {
            hash: "h2",
            ..arrival
        };
        assert_eq!(
            queued_agents(&route(&cfg, &state, &changed)),
            vec!["writer"]
        );
    }

    #[test]
    fn to_routes_to_one_agent_or_rejects() {
        let cfg = cfg();
        let state = State::default();
        let path = p("briefs/a.md");
        let r = route(
            &cfg,
            &state,
            &Arrival {
                path: &path,
                hash: "h",
                producer: None,
                to: Some("legal"),
            },
        );
        assert_eq!(queued_agents(&r), vec!["legal"]);
        let r = route(
            &cfg,
            &state,
            &Arrival {
                path: &path,
                hash: "h",
                producer: None,
                to: Some("nobody"),
            },
        );
        match &r.records[..] {
            [Record::Rejected { error, .. }] => assert!(
                error.contains("known agents are legal, reviewer, writer"),
                "{error}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn depth_is_bounded() {
        let cfg = cfg();
        let mut state = State::default();
        let mut producer: Option<String> = None;
        let mut refused = false;
        for i in 0..5 {
            let path = p(&format!("drafts/{i}.md"));
            let hash = format!("h{i}");
            let r = route(
                &cfg,
                &state,
                &Arrival {
                    path: &path,
                    hash: &hash,
                    producer: producer.as_deref(),
                    to: None,
                },
            );
            if let [Record::Rejected { error, .. }] = &r.records[..] {
                assert!(error.contains("over max_depth = 2"), "{error}");
                assert_eq!(i, 3);
                refused = true;
                break;
            }
            let Record::Queued { task, .. } = &r.records[0] else {
                panic!()
            };
            producer = Some(task.clone());
            apply(&mut state, r.records);
        }
        assert!(refused);
    }

    #[test]
    fn cycles_are_refused() {
        let cfg = Config::parse(
            "[agents.a]\non = [\"drafts/*.md\"]\nrun = \"true\"\n",
            Path::new("/"),
        )
        .unwrap();
        let mut state = State::default();
        let first = p("drafts/x.md");
        let r = route(
            &cfg,
            &state,
            &Arrival {
                path: &first,
                hash: "same",
                producer: None,
                to: None,
            },
        );
        let Record::Queued { task, .. } = &r.records[0] else {
            panic!()
        };
        let task = task.clone();
        apply(&mut state, r.records);
        // The agent's output has the same content at another path: a loop.
        let copy = p("drafts/y.md");
        let r = route(
            &cfg,
            &state,
            &Arrival {
                path: &copy,
                hash: "same",
                producer: Some(&task),
                to: None,
            },
        );
        assert!(
            matches!(&r.records[..], [Record::Rejected { error, .. }] if error.contains("cycle"))
        );
    }
}
