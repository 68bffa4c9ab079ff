//! Group commit: concurrent commits that arrive while a Raft write is in flight are gathered
//! into the next single Raft entry, so one fsync serves many transactions.

use crate::raft::{CommitBatch, Raft};
use crate::{CommitOutcome, CommitRequest, WalError};
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub(crate) type Reply = oneshot::Sender<Result<CommitOutcome, WalError>>;

pub(crate) async fn run(
    raft: Raft,
    mut rx: mpsc::Receiver<(CommitRequest, Reply)>,
    max_batch: usize,
    cancel: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => break,
            next = rx.recv() => match next { Some(x) => x, None => break },
        };
        let mut requests = vec![first.0];
        let mut replies = vec![first.1];
        while requests.len() < max_batch {
            match rx.try_recv() {
                Ok((r, reply)) => {
                    requests.push(r);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        let batch = CommitBatch {
            commit_time_micros: now_micros(),
            requests,
        };
        match raft.client_write(batch).await {
            Ok(resp) => {
                for (reply, outcome) in replies.into_iter().zip(resp.data) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                let err = match e {
                    RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                        WalError::NotLeader {
                            leader: f.leader_node.map(|n| n.addr),
                        }
                    }
                    RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                        WalError::Unavailable(e.to_string())
                    }
                    RaftError::Fatal(f) => {
                        tracing::error!(error = %f, "raft stopped");
                        WalError::ShuttingDown
                    }
                };
                for reply in replies {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
