//! The Admin UI side of the chat server (`--admin USER:PASS`): the
//! server instrumented on `/admin`, and the UI's web app served at
//! `/admin-ui/` behind the same credentials. Needs the `admin` feature;
//! without it, `--admin` is refused with how to get it.

use std::path::Path;

use socketio::{Server, StaticFiles};

#[cfg(feature = "admin")]
mod with_feature {
    use super::*;
    use socketio::{AdminAuth, AdminOptions};

    /// Where the UI is served.
    const UI_URL: &str = "/admin-ui";

    /// The instrumentation's options.
    pub struct Admin(AdminOptions);

    /// Credentials given: the options, or why the Admin UI cannot be had.
    pub fn admin(user: &str, password: &str) -> Result<Admin, String> {
        Ok(Admin(AdminOptions::new(AdminAuth::basic(user, password))))
    }

    /// Serve the UI's files from `dir`.
    pub fn serve_ui(files: StaticFiles, dir: &Path, admin: &Admin) -> StaticFiles {
        files.admin_ui(UI_URL, dir, &admin.0)
    }

    /// Instrument `server` (once).
    pub fn instrument(server: &Server, admin: Admin) -> Result<(), String> {
        server
            .instrument(admin.0)
            .map_err(|_| "the server is instrumented already".to_owned())
    }
}

#[cfg(not(feature = "admin"))]
mod with_feature {
    use super::*;

    /// Never made: the feature is off.
    pub enum Admin {}

    /// Credentials given: the options, or why the Admin UI cannot be had.
    pub fn admin(_user: &str, _password: &str) -> Result<Admin, String> {
        Err("--admin needs the admin feature: \
             cargo run --example chat --features admin -- --admin USER:PASS"
            .into())
    }

    /// Serve the UI's files from `dir`.
    pub fn serve_ui(_files: StaticFiles, _dir: &Path, admin: &Admin) -> StaticFiles {
        match *admin {}
    }

    /// Instrument `server` (once).
    pub fn instrument(_server: &Server, admin: Admin) -> Result<(), String> {
        match admin {}
    }
}

pub use with_feature::{admin, instrument, serve_ui, Admin};
