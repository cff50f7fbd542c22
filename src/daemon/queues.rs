//! The tasks the scheduler holds, each in one place: waiting for a retry, queued for
//! its agent, or running. Per agent, a FIFO queue and the agent processes alive, which
//! `concurrency` limits.
//!
//! An agent with a `rate` also starts at most that many tasks in any interval of its
//! length: its queue waits, and [`AgentQueues::rate_free_at`] says when it may go on.
//!
//! A running task's slot is freed when its process group is gone ([`AgentQueues::exited`]),
//! not when its attempt is settled ([`AgentQueues::ended`]): the next agent starts while
//! the last attempt is being committed, so `concurrency` limits agent processes.

use std::collections::{HashMap, VecDeque};

use tokio::time::Instant;

use crate::config::Rate;
use crate::journal::TaskId;

pub(crate) struct AgentQueues {
    /// Per configured agent; tasks of another agent are never held.
    agents: HashMap<String, AgentQueue>,
    /// Every task held, with its agent and place.
    tasks: HashMap<TaskId, Held>,
}

struct AgentQueue {
    /// Tasks ready to start, first queued first.
    pending: VecDeque<TaskId>,
    /// Agent processes alive (or about to start).
    alive: usize,
    /// The agent's `concurrency`.
    limit: usize,
    /// The agent's `rate`, and when its recent attempts started (within one interval).
    rate: Option<Rate>,
    starts: VecDeque<Instant>,
}

impl AgentQueue {
    fn new(limit: usize) -> AgentQueue {
        AgentQueue {
            pending: VecDeque::new(),
            alive: 0,
            limit,
            rate: None,
            starts: VecDeque::new(),
        }
    }

    /// Whether its rate lets a task start at `now` (forgetting starts older than one
    /// interval).
    fn admits(&mut self, now: Instant) -> bool {
        let Some(rate) = self.rate else {
            return true;
        };
        while self.starts.front().is_some_and(|&t| t + rate.per <= now) {
            self.starts.pop_front();
        }
        self.starts.len() < rate.starts as usize
    }

    /// Whether it has a task to start and a free slot.
    fn ready(&self) -> bool {
        self.alive < self.limit && !self.pending.is_empty()
    }
}

struct Held {
    agent: String,
    place: Place,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Failed: the next attempt is due later.
    Waiting,
    Queued,
    /// A runner has it; `exited` once its agent's process group is gone.
    Running {
        exited: bool,
    },
}

/// A task of an agent that is not in the config (any more).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UnknownAgent;

impl AgentQueues {
    /// Queues for the agents `limits` names, each with its concurrency.
    pub(crate) fn new<'a>(limits: impl IntoIterator<Item = (&'a str, usize)>) -> AgentQueues {
        let agents = limits
            .into_iter()
            .map(|(name, limit)| (name.to_string(), AgentQueue::new(limit)))
            .collect();
        AgentQueues {
            agents,
            tasks: HashMap::new(),
        }
    }

    /// Takes the agents and limits of an edited config: new agents get a queue, limits
    /// change, and the tasks waiting or queued for an agent that is gone are let go
    /// (returned; they stay queued in the journal). Running tasks run on.
    pub(crate) fn configure<'a>(
        &mut self,
        limits: impl IntoIterator<Item = (&'a str, usize)>,
    ) -> Vec<TaskId> {
        let limits: HashMap<&str, usize> = limits.into_iter().collect();
        for (name, limit) in &limits {
            let queue = self
                .agents
                .entry(name.to_string())
                .or_insert_with(|| AgentQueue::new(*limit));
            queue.limit = *limit;
        }
        let gone: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, h)| !limits.contains_key(h.agent.as_str()))
            .filter(|(_, h)| !matches!(h.place, Place::Running { .. }))
            .map(|(id, _)| id.clone())
            .collect();
        for task in &gone {
            self.forget(task);
        }
        // A queue whose agent is gone keeps counting its running processes until they
        // end; it takes no new tasks.
        for (name, queue) in self.agents.iter_mut() {
            if !limits.contains_key(name.as_str()) {
                queue.limit = 0;
            }
        }
        gone
    }

    /// Holds `task` of `agent` until its next attempt is due (see [`AgentQueues::push`]).
    /// A task already queued or running stays where it is.
    pub(crate) fn wait(&mut self, task: &TaskId, agent: &str) -> Result<(), UnknownAgent> {
        if self.agents.get(agent).is_none_or(|q| q.limit == 0) {
            return Err(UnknownAgent);
        }
        self.tasks.entry(task.clone()).or_insert_with(|| Held {
            agent: agent.to_string(),
            place: Place::Waiting,
        });
        Ok(())
    }

    /// Queues `task` for `agent` (or, with `agent` `None`, for the agent it waits
    /// with). Returns whether it is queued now: not when it was queued or running
    /// already, or is unknown.
    pub(crate) fn push(
        &mut self,
        task: &TaskId,
        agent: Option<&str>,
    ) -> Result<bool, UnknownAgent> {
        let agent = match (self.tasks.get(task), agent) {
            (Some(held), _) if held.place != Place::Waiting => return Ok(false),
            (Some(held), None) => held.agent.clone(),
            (_, Some(agent)) => agent.to_string(),
            (None, None) => return Ok(false),
        };
        let queue = self
            .agents
            .get_mut(&agent)
            .filter(|q| q.limit > 0)
            .ok_or(UnknownAgent)?;
        queue.pending.push_back(task.clone());
        self.tasks.insert(
            task.clone(),
            Held {
                agent,
                place: Place::Queued,
            },
        );
        Ok(true)
    }

    /// Forgets a task that waits or is queued (it became final, or was held for
    /// approval). A running task is left to its runner.
    pub(crate) fn forget(&mut self, task: &TaskId) {
        let Some(held) = self.tasks.get(task) else {
            return;
        };
        match held.place {
            Place::Running { .. } => return,
            Place::Queued => {
                if let Some(queue) = self.agents.get_mut(&held.agent) {
                    queue.pending.retain(|t| t != task);
                }
            }
            Place::Waiting => {}
        }
        self.tasks.remove(task);
    }

    /// Sets each agent's `rate` (`None`: no limit).
    pub(crate) fn set_rates<'a>(
        &mut self,
        rates: impl IntoIterator<Item = (&'a str, Option<Rate>)>,
    ) {
        for (name, rate) in rates {
            if let Some(queue) = self.agents.get_mut(name) {
                queue.rate = rate;
            }
        }
    }

    /// The next queued task whose agent has a free slot and whose rate lets it start,
    /// now counted as running.
    pub(crate) fn start_next(&mut self) -> Option<TaskId> {
        let now = Instant::now();
        let queue = self
            .agents
            .values_mut()
            .find_map(|q| (q.ready() && q.admits(now)).then_some(q))?;
        let task = queue.pending.pop_front()?;
        queue.alive += 1;
        if queue.rate.is_some() {
            queue.starts.push_back(now);
        }
        if let Some(held) = self.tasks.get_mut(&task) {
            held.place = Place::Running { exited: false };
        }
        Some(task)
    }

    /// When the first agent held back only by its rate may start again.
    pub(crate) fn rate_free_at(&self) -> Option<Instant> {
        self.agents
            .values()
            .filter(|q| q.ready())
            .filter_map(|q| {
                let rate = q.rate?;
                (q.starts.len() >= rate.starts as usize)
                    .then(|| q.starts.front().map(|&t| t + rate.per))
                    .flatten()
            })
            .min()
    }

    /// The agent process of a running task is gone: its slot is free.
    pub(crate) fn exited(&mut self, task: &TaskId) {
        if let Some(held) = self.tasks.get_mut(task) {
            if held.place == (Place::Running { exited: false }) {
                held.place = Place::Running { exited: true };
                if let Some(queue) = self.agents.get_mut(&held.agent) {
                    queue.alive -= 1;
                }
            }
        }
    }

    /// A running task's attempt is settled: it is no longer held (its slot is freed if
    /// its process was not reported gone).
    pub(crate) fn ended(&mut self, task: &TaskId) {
        let Some(held) = self.tasks.get(task) else {
            return;
        };
        if let Place::Running { exited } = held.place {
            if !exited {
                self.exited(task);
            }
            self.tasks.remove(task);
        }
    }

    pub(crate) fn is_running(&self, task: &TaskId) -> bool {
        self.tasks
            .get(task)
            .is_some_and(|h| matches!(h.place, Place::Running { .. }))
    }

    /// Tasks with a runner, their process alive or not.
    pub(crate) fn running(&self) -> usize {
        self.count(|p| matches!(p, Place::Running { .. }))
    }

    #[cfg(test)]
    fn queued(&self) -> usize {
        self.count(|p| p == Place::Queued)
    }

    /// Nothing waiting, queued or running.
    pub(crate) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    fn count(&self, f: impl Fn(Place) -> bool) -> usize {
        self.tasks.values().filter(|h| f(h.place)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str) -> TaskId {
        TaskId::from(id)
    }

    #[test]
    fn an_agent_runs_at_most_its_concurrency_and_a_gone_process_frees_its_slot() {
        let mut q = AgentQueues::new([("writer", 2), ("editor", 1)]);
        for id in ["a", "b", "c"] {
            assert_eq!(q.push(&t(id), Some("writer")), Ok(true));
        }
        assert_eq!(q.push(&t("a"), Some("writer")), Ok(false), "queued once");
        assert_eq!(q.start_next(), Some(t("a")));
        assert_eq!(q.start_next(), Some(t("b")));
        assert_eq!(q.start_next(), None, "two slots, both taken");
        q.exited(&t("a"));
        q.exited(&t("a")); // reported twice: freed once
        assert_eq!(q.start_next(), Some(t("c")));
        assert_eq!(q.start_next(), None);
        assert_eq!((q.running(), q.queued()), (3, 0));
        q.ended(&t("a"));
        q.ended(&t("b")); // its process was never reported gone: the slot is freed now
        assert_eq!(q.running(), 1);
        assert_eq!(q.push(&t("d"), Some("writer")), Ok(true));
        assert_eq!(q.start_next(), Some(t("d")));
        q.ended(&t("c"));
        q.ended(&t("d"));
        assert!(q.is_empty());
    }

    #[test]
    fn an_edited_config_adds_agents_changes_limits_and_lets_go_of_removed_ones() {
        let mut q = AgentQueues::new([("writer", 1), ("old", 1)]);
        q.push(&t("a"), Some("writer")).unwrap();
        q.push(&t("b"), Some("writer")).unwrap();
        q.push(&t("o"), Some("old")).unwrap();
        let gone = q.configure([("writer", 2), ("new", 1)]);
        assert_eq!(gone, [t("o")], "queued for an agent that is gone");
        assert_eq!(q.push(&t("n"), Some("new")), Ok(true));
        assert_eq!(q.push(&t("x"), Some("old")), Err(UnknownAgent));
        let mut started: Vec<String> = std::iter::from_fn(|| q.start_next())
            .map(|t| t.to_string())
            .collect();
        started.sort();
        assert_eq!(started, ["a", "b", "n"], "writer's limit is 2 now");
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_holds_starts_to_so_many_per_interval() {
        let mut q = AgentQueues::new([("caller", 5)]);
        let rate = Rate {
            starts: 2,
            per: std::time::Duration::from_secs(10),
        };
        q.set_rates([("caller", Some(rate))]);
        for id in ["a", "b", "c", "d", "e"] {
            q.push(&t(id), Some("caller")).unwrap();
        }
        let began = Instant::now();
        assert_eq!(q.start_next(), Some(t("a")));
        tokio::time::advance(std::time::Duration::from_secs(3)).await;
        assert_eq!(q.start_next(), Some(t("b")));
        assert_eq!(q.start_next(), None, "two starts in 10 s, with slots free");
        assert_eq!(
            q.rate_free_at(),
            Some(began + rate.per),
            "when `a` leaves the window"
        );
        tokio::time::advance(std::time::Duration::from_secs(7)).await;
        assert_eq!(q.start_next(), Some(t("c")));
        assert_eq!(q.start_next(), None, "`b` is still within the window");
        tokio::time::advance(std::time::Duration::from_secs(3)).await;
        assert_eq!(q.start_next(), Some(t("d")));
        // Without a rate, only concurrency counts.
        q.set_rates([("caller", None)]);
        assert_eq!(q.start_next(), Some(t("e")));
        assert_eq!(q.rate_free_at(), None);
    }

    #[test]
    fn a_waiting_task_is_queued_for_its_agent_and_a_forgotten_one_never_starts() {
        let mut q = AgentQueues::new([("writer", 1)]);
        assert_eq!(q.wait(&t("r"), "nobody"), Err(UnknownAgent));
        assert_eq!(q.push(&t("r"), Some("nobody")), Err(UnknownAgent));
        q.wait(&t("r"), "writer").unwrap();
        assert_eq!(q.queued(), 0);
        assert_eq!(q.push(&t("r"), None), Ok(true));
        q.push(&t("s"), Some("writer")).unwrap();
        q.forget(&t("r"));
        assert_eq!(q.start_next(), Some(t("s")));
        q.forget(&t("s")); // running: left to its runner
        assert!(q.is_running(&t("s")));
        assert_eq!(q.push(&t("gone"), None), Ok(false));
    }
}
