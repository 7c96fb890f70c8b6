//! Everything that talks to the Kubernetes API: kubeconfig, clients, ECK resources.

pub mod access;
pub mod clients;
pub mod eck;
pub mod failure;
pub mod kubeconfig;
pub mod watch;
