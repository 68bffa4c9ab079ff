//! Pub/sub: channels and patterns of this proxy's connections. Messages are not stored; a
//! subscriber gets what is published while it is subscribed, as in Redis.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use thunderdb_compute::redis::{Reply, glob_match};
use tokio::sync::mpsc::UnboundedSender;

/// A connection's inbox for pushed messages.
pub type Inbox = UnboundedSender<Reply>;

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
                if inbox.send(push).is_ok() {
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
                if inbox.send(push).is_ok() {
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
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        broker.subscribe(1, b"news", &tx);
        broker.psubscribe(1, b"n*", &tx);
        assert_eq!(broker.publish(b"news", b"hi"), 2);
        assert_eq!(broker.publish(b"other", b"hi"), 0);
        assert!(matches!(rx.try_recv(), Ok(Reply::Push(p)) if p[0] == Reply::bulk("message")));
        assert!(matches!(rx.try_recv(), Ok(Reply::Push(p)) if p[0] == Reply::bulk("pmessage")));
        broker.unsubscribe(1, b"news");
        broker.punsubscribe(1, b"n*");
        assert_eq!(broker.publish(b"news", b"hi"), 0);
        assert!(broker.channels(None).is_empty());
    }
}
