//! fledge-deploy: the new version's Deployment `<service>-<version>`.
//!
//! ```text
//!  Release ──┐
//!            ├─▶ template::desired_deployment ──▶ server-side apply (manager "fledge") ──▶ rollout::status
//!  live  ────┘    (pod template copied, image and replicas set,        (re-applying the same
//!  Deployment      labels app=<service>, version=<version>)             release changes nothing)
//! ```
//!
//! The pure parts ([`template`], [`rollout`]) decide what the Deployment should be and whether it has rolled out;
//! [`Deployer`] talks to the cluster, and [`ReleaseEvents`] records the release's steps as Events regarding it.

mod deployer;
mod port;
pub mod release_events;
pub mod rollout;
pub mod template;

pub use deployer::{DeployError, Deployer};
pub use release_events::ReleaseEvents;
pub use rollout::RolloutStatus;
pub use template::{FIELD_MANAGER, TemplateError};
