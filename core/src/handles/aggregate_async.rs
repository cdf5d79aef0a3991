//! [`AsyncAggregate`]: an [`Aggregate`] run on tokio's blocking pool.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::aggregate::Aggregate;
use super::async_api::blocking;
use crate::aggregate::AggregateExplain;
use crate::error::Result;

/// An aggregation pipeline for async code (`AsyncCollection::aggregate`):
/// each run happens on tokio's blocking pool, never on a runtime thread.
#[derive(Clone, Debug)]
pub struct AsyncAggregate {
    agg: Aggregate,
}

impl AsyncAggregate {
    pub(crate) fn new(agg: Aggregate) -> Self {
        AsyncAggregate { agg }
    }

    /// See [`Aggregate::memory_limit`].
    pub fn memory_limit(self, bytes: usize) -> Self {
        AsyncAggregate {
            agg: self.agg.memory_limit(bytes),
        }
    }

    /// Runs the pipeline and collects the output documents.
    pub async fn to_vec(self) -> Result<Vec<Value>> {
        blocking(move || self.agg.to_vec()).await
    }

    /// Runs the pipeline, deserializing each output document into `T`.
    pub async fn to_vec_as<T: DeserializeOwned + Send + 'static>(self) -> Result<Vec<T>> {
        blocking(move || self.agg.to_vec_as::<T>()).await
    }

    /// Runs the pipeline and reports how it ran.
    pub async fn explain(self) -> Result<AggregateExplain> {
        blocking(move || self.agg.explain()).await
    }
}
