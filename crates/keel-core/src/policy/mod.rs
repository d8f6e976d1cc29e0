//! The access policy engine: role → functions with data scope, organisation scope, legitimate
//! relationship, purpose of use, opt-outs, PDS restrictions, sensitive entries and break-glass.
//!
//! Pure and data-driven: a versioned [`Policy`] document (JSON) and an [`AccessRequest`] of
//! facts go in, an explainable [`Decision`] comes out — permit or deny, every reason as a
//! machine code with words, the policy version, and the obligations the caller must apply.
//! Nothing here reads files, clocks or stores: callers supply the policy text, `now` and the
//! patient's facts.

mod decide;
mod decision;
mod document;
mod function;
pub(crate) use function::SmartAccess;
mod request;
mod smart_scope;

pub use decide::decide;
pub use decision::{Decision, Effect, Obligations, ReasonCode, RedactedField};
pub use document::{BreakGlassRules, Grant, Policy, PolicyError, RoleProfile, SensitiveCategory};
pub use function::{DataScope, Function};
pub use request::{
    AccessRequest, BreakGlass, CareLink, CareLinkKind, OrganisationFacts, PatientFacts,
    PcnMembership, PdsRestriction, Relationship, Requester, UserRole,
};
pub use smart_scope::{SmartContext, SmartScope};
