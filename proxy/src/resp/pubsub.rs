//! Pub/sub: channels and patterns of this proxy's connections. Messages are not stored; a
//! subscriber gets what is published while it is subscribed, as in Redis.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use thunderdb_compute::redis::{Reply, glob_match};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

/// The most a subscriber may have waiting to be written (Redis's `client-output-buffer-limit
/// pubsub` hard limit, 32 MiB): a subscriber that falls further behind is disconnected rather
/// than left to grow the server's memory.
pub const MAX_PENDING: usize = 32 << 20;

/// A connection's inbox for pushed messages, bounded by the bytes waiting in it.
#[derive(Clone)]
pub struct Inbox {
    tx: UnboundedSender<Reply>,
    pending: Arc<AtomicUsize>,
    /// Disconnects the subscriber when it falls too far behind.
    kill: CancellationToken,
}

/// The receiving end of an [`Inbox`].
pub struct Pushed {
    rx: UnboundedReceiver<Reply>,
    pending: Arc<AtomicUsize>,
}

/// An inbox for a connection that `kill` disconnects.
pub fn inbox(kill: CancellationToken) -> (Inbox, Pushed) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let pending = Arc::new(AtomicUsize::new(0));
    (
        Inbox {
            tx,
            pending: pending.clone(),
            kill,
        },
        Pushed { rx, pending },
    )
}

/// About how many bytes a pushed reply takes (its bulk strings).
fn size(reply: &Reply) -> usize {
    match reply {
        Reply::Push(items) | Reply::Array(items) => items.iter().map(size).sum::<usize>() + 8,
        Reply::Bulk(b) => b.len() + 8,
        _ => 8,
    }
}

impl Inbox {
    /// Queues `reply`; `false` if the connection is gone or has fallen too far behind (it is
    /// then disconnected).
    pub fn send(&self, reply: Reply) -> bool {
        let n = size(&reply);
        if self.pending.fetch_add(n, Ordering::SeqCst) + n > MAX_PENDING {
            self.pending.fetch_sub(n, Ordering::SeqCst);
            self.kill.cancel();
            return false;
        }
        if self.tx.send(reply).is_err() {
            self.pending.fetch_sub(n, Ordering::SeqCst);
            return false;
        }
        true
    }
}

impl Pushed {
    pub async fn recv(&mut self) -> Option<Reply> {
        let reply = self.rx.recv().await?;
        self.pending.fetch_sub(size(&reply), Ordering::SeqCst);
        Some(reply)
    }

    pub fn try_recv(&mut self) -> Option<Reply> {
        let reply = self.rx.try_recv().ok()?;
        self.pending.fetch_sub(size(&reply), Ordering::SeqCst);
        Some(reply)
    }
}

/// Who listens to what.
#[derive(Default)]
pub struct Broker {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    channels: BTreeMap<Vec<u8>, HashMap<u64, Inbox>>,
    patterns: BTreeMap<Vec<u8>, HashMap<u64, Inbox>>,
}

impl Broker {
    pub fn subscribe(&self, client: u64, channel: &[u8], inbox: &Inbox) {
        self.state
            .lock()
            .channels
            .entry(channel.to_vec())
            .or_default()
            .insert(client, inbox.clone());
    }

    pub fn unsubscribe(&self, client: u64, channel: &[u8]) {
        let mut state = self.state.lock();
        if let Some(subs) = state.channels.get_mut(channel) {
            subs.remove(&client);
            if subs.is_empty() {
                state.channels.remove(channel);
            }
        }
    }

    pub fn psubscribe(&self, client: u64, pattern: &[u8], inbox: &Inbox) {
        self.state
            .lock()
            .patterns
            .entry(pattern.to_vec())
            .or_default()
            .insert(client, inbox.clone());
    }

    pub fn punsubscribe(&self, client: u64, pattern: &[u8]) {
        let mut state = self.state.lock();
        if let Some(subs) = state.patterns.get_mut(pattern) {
            subs.remove(&client);
            if subs.is_empty() {
                state.patterns.remove(pattern);
            }
        }
    }

    /// Delivers `message`; the number of receivers, as PUBLISH answers.
    pub fn publish(&self, channel: &[u8], message: &[u8]) -> i64 {
        let state = self.state.lock();
        let mut delivered = 0;
        if let Some(subs) = state.channels.get(channel) {
            for inbox in subs.values() {
                let push = Reply::Push(vec![
                    Reply::bulk("message"),
                    Reply::bulk(channel),
                    Reply::bulk(message),
                ]);
                if inbox.send(push) {
                    delivered += 1;
                }
            }
        }
        for (pattern, subs) in &state.patterns {
            if !glob_match(pattern, channel) {
                continue;
            }
            for inbox in subs.values() {
                let push = Reply::Push(vec![
                    Reply::bulk("pmessage"),
                    Reply::bulk(pattern.clone()),
                    Reply::bulk(channel),
                    Reply::bulk(message),
                ]);
                if inbox.send(push) {
                    delivered += 1;
                }
            }
        }
        delivered
    }

    /// Channels with at least one subscriber, matching `pattern` if given.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        self.state
            .lock()
            .channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c)))
            .cloned()
            .collect()
    }

    pub fn subscribers(&self, channel: &[u8]) -> i64 {
        self.state
            .lock()
            .channels
            .get(channel)
            .map_or(0, |s| s.len() as i64)
    }

    /// The number of distinct patterns subscribed to.
    pub fn patterns(&self) -> i64 {
        self.state.lock().patterns.len() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_reaches_channels_and_patterns() {
        let broker = Broker::default();
        let (tx, mut rx) = inbox(CancellationToken::new());
        broker.subscribe(1, b"news", &tx);
        broker.psubscribe(1, b"n*", &tx);
        assert_eq!(broker.publish(b"news", b"hi"), 2);
        assert_eq!(broker.publish(b"other", b"hi"), 0);
        assert!(matches!(rx.try_recv(), Some(Reply::Push(p)) if p[0] == Reply::bulk("message")));
        assert!(matches!(rx.try_recv(), Some(Reply::Push(p)) if p[0] == Reply::bulk("pmessage")));
        broker.unsubscribe(1, b"news");
        broker.punsubscribe(1, b"n*");
        assert_eq!(broker.publish(b"news", b"hi"), 0);
        assert!(broker.channels(None).is_empty());
    }

    #[test]
    fn a_subscriber_that_falls_behind_is_disconnected() {
        let broker = Broker::default();
        let kill = CancellationToken::new();
        let (tx, mut rx) = inbox(kill.clone());
        broker.subscribe(1, b"big", &tx);
        let message = vec![b'x'; 1 << 20];
        let mut delivered = 0;
        while broker.publish(b"big", &message) == 1 {
            delivered += 1;
            assert!(delivered < 64, "the inbox never filled");
        }
        assert!(
            (30..=32).contains(&delivered),
            "{delivered} messages of 1 MiB fit in 32 MiB"
        );
        assert!(kill.is_cancelled());
        // What was queued is still there for it to read; reading frees the budget.
        assert!(rx.try_recv().is_some());
    }
}
