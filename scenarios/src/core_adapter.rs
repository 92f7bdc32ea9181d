//! Plugs tusk's core into the world: `tusk_core::reconcile` is the operator's brain.
//! [`crate::stub::reconcile`] is a smaller stand-in with the same signature, for world tests that
//! should not depend on the core's behaviour.

use crate::operator::ReconcileFn;

pub fn reconciler() -> Box<ReconcileFn> {
    Box::new(tusk_core::reconcile)
}

pub fn stub() -> Box<ReconcileFn> {
    Box::new(crate::stub::reconcile)
}
