//! Router wall clock in µs since the Unix epoch: the time base of every protocol timestamp
//! (WELCOME time, SYNC, param timestamps).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in µs since the Unix epoch (0 if the system clock is before 1970).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
