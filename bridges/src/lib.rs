//! Protocol bridges; each protocol is one module (see ARCHITECTURE.md).
