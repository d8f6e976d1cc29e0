//! Keel HTTP edge.
