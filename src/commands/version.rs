//! `kubectl remote-cluster version`: the plugin's own version, without any network call.

use serde::Serialize;

use crate::cli::VersionArgs;
use crate::output;
use crate::output::API_VERSION;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub version: &'static str,
    pub os: &'static str,
    pub arch: &'static str,
}

pub fn info() -> VersionInfo {
    VersionInfo {
        api_version: API_VERSION,
        kind: "Version",
        version: env!("CARGO_PKG_VERSION"),
        os: std::env::consts::OS,
        arch: std::env::consts::ARCH,
    }
}

pub fn run(args: &VersionArgs) -> anyhow::Result<()> {
    let info = info();
    match args.output {
        Some(format) => output::print_document(&info, format.into()),
        None => output::write_stdout(&format!(
            "kubectl remote-cluster {} ({}/{})\n",
            info.version, info.os, info.arch
        )),
    }
}
