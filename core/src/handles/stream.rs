//! [`AsyncChangeStream`]: a change stream for tokio. A blocking-pool thread
//! tails the log (as [`ChangeStream`] does) and hands events over a bounded
//! channel; dropping the stream stops that thread within a poll interval.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;

use super::watch::{ChangeEvent, ChangeStream};
use crate::error::Result;

/// Events buffered between the tailing thread and the async consumer.
const CHANNEL: usize = 256;

/// An async change stream (implements `futures_core::Stream`).
#[derive(Debug)]
pub struct AsyncChangeStream {
    rx: mpsc::Receiver<Result<ChangeEvent>>,
}

impl AsyncChangeStream {
    /// Moves `stream` onto tokio's blocking pool. Must be called inside a tokio runtime.
    pub fn new(mut stream: ChangeStream) -> AsyncChangeStream {
        let (tx, rx) = mpsc::channel(CHANNEL);
        tokio::task::spawn_blocking(move || {
            while !tx.is_closed() {
                let item = match stream.next_timeout(Duration::from_millis(100)) {
                    Ok(Some(ev)) => Ok(ev),
                    Ok(None) => continue,
                    Err(e) => Err(e),
                };
                let failed = item.is_err();
                if tx.blocking_send(item).is_err() || failed {
                    break;
                }
            }
        });
        AsyncChangeStream { rx }
    }

    /// The next event; `None` only after an error ended the stream.
    pub async fn next(&mut self) -> Option<Result<ChangeEvent>> {
        self.rx.recv().await
    }
}

impl futures_core::Stream for AsyncChangeStream {
    type Item = Result<ChangeEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl ChangeStream {
    /// Turns this stream into an [`AsyncChangeStream`] (inside a tokio runtime).
    pub fn into_async(self) -> AsyncChangeStream {
        AsyncChangeStream::new(self)
    }
}
