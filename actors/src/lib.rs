//! The CLASP router as actors; filled in by the relay work (see ARCHITECTURE.md).
