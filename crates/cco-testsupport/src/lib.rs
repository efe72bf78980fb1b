//! placeholder

pub mod kube_env;
