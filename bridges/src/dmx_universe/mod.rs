//! DMX universes over IP, shared by the Art-Net and sACN bridges (and meant for any other
//! DMX transport): which universes a bridge handles, the merge of several sources into one
//! universe (HTP/LTP, priority, timeouts, sequence numbers), the address and value mapping,
//! and the outbound refresh/keep-alive scheduler.

pub mod core;
pub mod dest;
pub mod map;
pub mod merge;
pub mod refresh;
pub mod universes;

pub use map::DmxMode;
pub use merge::MergeMode;
pub use universes::UniverseSet;
