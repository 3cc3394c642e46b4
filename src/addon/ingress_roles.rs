//! Who a request through ingress is, for the panel (`http::panel`): the
//! Home Assistant user the ingress proxy's headers name gets their extension
//! (made on the first visit) and, when Home Assistant lists them as an
//! administrator ([`HaAdmins`]), the administration too. Put into the
//! request as [`Vouched`]; a request naming no user, or naming one wrongly,
//! gets no role (the handlers then refuse it as before). Only the API and
//! `/ws` need it, so the page's files cost no lookup.
use super::ha_admins::HaAdmins;
use super::ha_users::HaUser;
use super::user_directory::HaUserDirectory;
use crate::http::panel::sessions::Role;
use crate::http::panel::Vouched;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

#[derive(Clone)]
pub struct IngressRoles {
    pub users: Arc<HaUserDirectory>,
    pub admins: Arc<HaAdmins>,
}

/// The role of a user: administrators keep their phone (when they have an
/// extension); a user with neither an extension nor the rights has none.
pub fn role_of(admin: bool, extension: Option<String>) -> Option<Role> {
    match (admin, extension) {
        (true, Some(e)) => Some(Role::AdminPhone(e)),
        (true, None) => Some(Role::Admin),
        (false, Some(e)) => Some(Role::Extension(e)),
        (false, None) => None,
    }
}

/// Whether a path needs to know who asks.
pub fn needs_role(path: &str) -> bool {
    path == "/ws" || path.starts_with("/api/")
}

pub async fn vouch(State(r): State<IngressRoles>, mut req: Request, next: Next) -> Response {
    req.extensions_mut().remove::<Vouched>();
    if needs_role(req.uri().path()) {
        match HaUser::from_headers(req.headers()) {
            Ok(Some(user)) => {
                let ext = match r.users.extension_for(&user).await {
                    Ok(e) => e.map(|e| e.extension),
                    Err(e) => {
                        tracing::warn!(user = %user.id, "panel: cannot find the Home Assistant user's extension: {e:#}");
                        None
                    }
                };
                let admin = r.admins.is_admin(&user.id).await;
                if let Some(role) = role_of(admin, ext) {
                    req.extensions_mut().insert(Vouched(role));
                }
            }
            Ok(None) => {}
            // the handler that cares says so (`/ws`: 400 naming the header)
            Err(e) => tracing::debug!("panel: ingress user headers unusable: {e:#}"),
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert_eq!(role_of(true, Some("100".into())), Some(Role::AdminPhone("100".into())));
        assert_eq!(role_of(true, None), Some(Role::Admin));
        assert_eq!(role_of(false, Some("101".into())), Some(Role::Extension("101".into())));
        assert_eq!(role_of(false, None), None);
    }

    #[test]
    fn only_the_api_and_the_socket_ask() {
        assert!(needs_role("/api/admin/extensions") && needs_role("/api/session") && needs_role("/ws"));
        assert!(!needs_role("/") && !needs_role("/panel.js") && !needs_role("/sip-core") && !needs_role("/apix"));
    }
}
