//! Replication state published through the `metrics` facade (feature
//! `metrics`); without the feature every function here is a no-op.
//!
//! | name | kind | labels | meaning |
//! |---|---|---|---|
//! | `collection_store_replica_applied_lsn` | gauge | `primary` | last durably applied LSN |
//! | `collection_store_replica_lag_entries` | gauge | `primary` | primary's last LSN − applied LSN; NaN while disconnected (unknown) |
//! | `collection_store_replica_lag_ms` | gauge | `primary` | age of the oldest known unapplied entry; NaN while disconnected |
//! | `collection_store_replica_connected` | gauge | `primary` | 1 when connected and authenticated |
//! | `collection_store_replica_bytes_received_total` | counter | `primary` | bytes received |
//! | `collection_store_replica_reconnects_total` | counter | `primary` | reconnection attempts |
//! | `collection_store_primary_replicas` | gauge | `addr` | connected replicas |
//! | `collection_store_primary_replica_acked_lsn` | gauge | `addr`, `peer` | a replica's acknowledged LSN |
//! | `collection_store_primary_auth_failures_total` | counter | `addr` | refused peers |

#[cfg(feature = "metrics")]
mod imp {
    use super::super::ReplicaStatus;

    pub fn replica(primary: &str, s: &ReplicaStatus) {
        let l = [("primary", primary.to_string())];
        metrics::gauge!("collection_store_replica_applied_lsn", &l).set(s.applied_lsn as f64);
        metrics::gauge!("collection_store_replica_lag_entries", &l)
            .set(s.lag_entries.map_or(f64::NAN, |v| v as f64));
        metrics::gauge!("collection_store_replica_lag_ms", &l)
            .set(s.lag_ms.map_or(f64::NAN, |v| v as f64));
        metrics::gauge!("collection_store_replica_connected", &l).set(if s.connected {
            1.0
        } else {
            0.0
        });
        metrics::counter!("collection_store_replica_bytes_received_total", &l)
            .absolute(s.bytes_received);
        metrics::counter!("collection_store_replica_reconnects_total", &l).absolute(s.reconnects);
    }

    pub fn primary_replicas(addr: &str, n: usize) {
        metrics::gauge!("collection_store_primary_replicas", "addr" => addr.to_string())
            .set(n as f64);
    }

    pub fn primary_ack(addr: &str, peer: &str, lsn: u64) {
        metrics::gauge!("collection_store_primary_replica_acked_lsn", "addr" => addr.to_string(), "peer" => peer.to_string())
            .set(lsn as f64);
    }

    pub fn primary_auth_failure(addr: &str) {
        metrics::counter!("collection_store_primary_auth_failures_total", "addr" => addr.to_string()).increment(1);
    }
}

#[cfg(not(feature = "metrics"))]
mod imp {
    pub fn primary_replicas(_addr: &str, _n: usize) {}
    pub fn primary_ack(_addr: &str, _peer: &str, _lsn: u64) {}
    pub fn primary_auth_failure(_addr: &str) {}
}

pub(crate) use imp::*;
