//! The supply-chain gate: what verifies but must not be served (here: the release-cooldown and typosquat signals).
pub mod cooldown;
pub mod typosquat;
