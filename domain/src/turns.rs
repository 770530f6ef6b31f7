//! Turns at a resource only one task may use at a time (SQLite's writer connection),
//! handed out by class: urgent turns (inbound events, which a caller is waiting to
//! have acknowledged) before background ones, each class in arrival order.
//!
//! Only the event writer asks for urgent turns, one at a time, so background work is
//! never starved: when an urgent turn ends, the next waiting background task goes
//! before the writer's next batch, which meanwhile gathers whatever arrived. An
//! acknowledgement thus waits for at most one background transaction.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

#[derive(Debug, Default)]
pub struct Turns(Mutex<Queue>);

#[derive(Debug, Default)]
struct Queue {
    taken: bool,
    urgent: VecDeque<oneshot::Sender<()>>,
    background: VecDeque<oneshot::Sender<()>>,
}

/// The right to use the resource; the next waiter gets it when this is dropped.
#[derive(Debug)]
pub struct Turn(Arc<Turns>);

impl Drop for Turn {
    fn drop(&mut self) {
        self.0.pass_on();
    }
}

impl Turns {
    /// Waits for a turn (cancel-safe: a waiter dropped after being given the turn
    /// hands it on).
    pub async fn take(self: &Arc<Self>, urgent: bool) -> Turn {
        let receiver = {
            let mut queue = self.0.lock().expect("turns lock");
            if !queue.taken {
                queue.taken = true;
                return Turn(self.clone());
            }
            let (sender, receiver) = oneshot::channel();
            if urgent {
                queue.urgent.push_back(sender);
            } else {
                queue.background.push_back(sender);
            }
            receiver
        };
        let mut waiting = Waiting {
            receiver,
            turns: self.clone(),
            given: false,
        };
        // The sender is only dropped after a successful send, so this cannot fail.
        let _ = (&mut waiting.receiver).await;
        waiting.given = true;
        Turn(self.clone())
    }

    fn pass_on(&self) {
        let mut queue = self.0.lock().expect("turns lock");
        while let Some(next) = queue
            .urgent
            .pop_front()
            .or_else(|| queue.background.pop_front())
        {
            // A waiter that gave up has closed its receiver: try the next one.
            if next.send(()).is_ok() {
                return;
            }
        }
        queue.taken = false;
    }
}

/// A queued waiter; if it is dropped after the turn was sent to it, the turn moves on.
struct Waiting {
    receiver: oneshot::Receiver<()>,
    turns: Arc<Turns>,
    given: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.given {
            self.receiver.close();
            if self.receiver.try_recv().is_ok() {
                self.turns.pass_on();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn urgent_waiters_go_before_background_ones_and_cancelled_ones_pass_on() {
        let turns = Arc::new(Turns::default());
        let first = turns.take(false).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, urgent) in [("bg1", false), ("bg2", false), ("urgent", true)] {
            let (turns, order) = (turns.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _turn = turns.take(urgent).await;
                order.lock().unwrap().push(name);
            }));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A waiter that gives up does not keep the turn.
        let gave_up = tokio::time::timeout(Duration::from_millis(10), turns.take(true)).await;
        assert!(gave_up.is_err());
        drop(first);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec!["urgent", "bg1", "bg2"]);
        drop(turns.take(false).await);
    }
}
