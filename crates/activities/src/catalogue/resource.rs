//! The resources activities touch, as typed references: a resource type
//! (declared by its service module, with how it opts in) and an identifier.
//! The guards work on these alone: opt-in tags, locks, and which activities
//! overlap; selecting resources by tag can produce them the same way.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use futures_util::future::BoxFuture;

use crate::{AwsError, Ports};

/// How a resource's tags are read, for the opt-in guard.
pub type TagReader = for<'a> fn(
    &'a Resource,
    &'a Ports<'a>,
) -> BoxFuture<'a, Result<BTreeMap<String, String>, AwsError>>;

/// How a resource type is fenced.
#[derive(Clone, Copy)]
pub enum OptIn {
    /// It must carry the opt-in tag with the value `true`: read with
    /// `read`, which calls `iam` (in the Plan function).
    Tag {
        read: TagReader,
        iam: &'static [&'static str],
    },
    /// Fenced another way instead, and how (SSM writes by a parameter path
    /// in IAM; load by the host allow-list).
    Fenced(&'static str),
}

/// A kind of resource, declared once by its service module.
pub struct ResourceType {
    /// The chaosaws module: `ecs`.
    pub service: &'static str,
    /// `service`, as the service calls it.
    pub name: &'static str,
    /// How messages name it: `ECS service`.
    pub noun: &'static str,
    /// How messages name its parent, when its identifier is unique only
    /// there: `cluster`.
    pub parent: Option<&'static str>,
    /// The first part of its lock's name under `/turbulence/locks/`.
    pub lock: &'static str,
    pub opt_in: OptIn,
}

impl fmt::Debug for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.service, self.name)
    }
}

impl ResourceType {
    /// A resource of this type.
    pub fn of(&'static self, id: impl Into<String>) -> Resource {
        Resource {
            ty: self,
            id: id.into(),
            parent: None,
        }
    }

    /// A resource of this type within its parent.
    pub fn within(&'static self, parent: impl Into<String>, id: impl Into<String>) -> Resource {
        Resource {
            ty: self,
            id: id.into(),
            parent: Some(parent.into()),
        }
    }
}

/// One resource an activity touches.
#[derive(Debug, Clone)]
pub struct Resource {
    pub ty: &'static ResourceType,
    /// Its name, identifier or ARN, as the experiment gave it.
    pub id: String,
    /// What it belongs to, when its identifier is unique only there (an ECS
    /// service's cluster).
    pub parent: Option<String>,
}

impl Resource {
    fn key(&self) -> (&str, &str, Option<&str>, &str) {
        (
            self.ty.service,
            self.ty.name,
            self.parent.as_deref(),
            &self.id,
        )
    }

    /// The SSM parameter that locks this resource.
    pub fn lock_parameter(&self) -> String {
        // A function may be named by ARN: ':' is not allowed in a name.
        let id = self.id.trim_start_matches('/').replace(':', "_");
        match &self.parent {
            Some(p) => format!("{}{}/{p}/{id}", crate::guard::LOCK_PREFIX, self.ty.lock),
            None => format!("{}{}/{id}", crate::guard::LOCK_PREFIX, self.ty.lock),
        }
    }

    /// Whether it must carry the opt-in tag.
    pub fn needs_opt_in(&self) -> bool {
        matches!(self.ty.opt_in, OptIn::Tag { .. })
    }

    /// Whether two resources share something: the same resource, or one
    /// within the other (an ECS service within the cluster a cluster-wide
    /// stop takes tasks from).
    pub fn overlaps(&self, other: &Resource) -> bool {
        let within = |inner: &Resource, outer: &Resource| {
            outer.parent.is_none()
                && inner.parent.as_deref() == Some(outer.id.as_str())
                && inner.ty.service == outer.ty.service
                && inner.ty.parent == Some(outer.ty.name)
        };
        self == other || within(self, other) || within(other, self)
    }
}

impl PartialEq for Resource {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Resource {}

impl PartialOrd for Resource {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Resource {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} '{}'", self.ty.noun, self.id)?;
        if let (Some(noun), Some(parent)) = (self.ty.parent, &self.parent) {
            write!(f, " of {noun} '{parent}'")?;
        }
        Ok(())
    }
}
