//! Who may run what: Redis's `requirepass` and ACL-style users with roles.
//!
//! ```toml
//! requirepass = "s3cret"            # the `default` user's password (AUTH s3cret)
//!
//! [[users]]                         # AUTH reader r3ad
//! name = "reader"
//! password = "r3ad"
//! role = "read-only"                # or "read-write", "admin"
//! ```
//!
//! With neither set, every connection is the `default` user with every right, as a Redis
//! without a password is. Once either is set, a connection must `AUTH [user] password` (or
//! `HELLO 3 AUTH user password`) before any command but `AUTH`, `HELLO` and `QUIT`, which
//! are answered `-NOAUTH`; when only `users` are set the `default` user is disabled (unlike
//! Redis, where it would stay open without a password: defining users is taken to mean that
//! anonymous access is not wanted). A `read-only` user runs reads and connection commands;
//! a write is answered `-NOPERM`. `admin` has every right (and will be the role of the
//! membership and backup commands). A wrong user or password is `-WRONGPASS`, logged and
//! counted. Passwords sit in the config file in clear, as Redis's do: keep it readable by the
//! node's user only. Peers are not users: securing the peer port is TLS's job.

use serde::Deserialize;

/// What a user may do.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    ReadOnly,
    ReadWrite,
    Admin,
}

/// One `[[users]]` entry.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub password: String,
    pub role: Role,
}

/// Who a connection is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub user: String,
    pub role: Role,
}

/// Refusals, in Redis's words.
pub const NOAUTH: &str = "NOAUTH Authentication required.";
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// The connection's access before it authenticates: `default` with every right when no
/// password is configured, nobody otherwise.
pub fn initial(requirepass: Option<&str>, users: &[UserConfig]) -> Option<Access> {
    match (requirepass, users.is_empty()) {
        (None, true) => Some(Access {
            user: "default".into(),
            role: Role::Admin,
        }),
        _ => None,
    }
}

/// Checks `AUTH [user] password`. `Err` is the error line to answer.
pub fn authenticate(
    requirepass: Option<&str>,
    users: &[UserConfig],
    user: Option<&[u8]>,
    password: &[u8],
) -> Result<Access, String> {
    let name = user.unwrap_or(b"default");
    if name == b"default" {
        return match requirepass {
            Some(expected) if same(expected.as_bytes(), password) => Ok(Access {
                user: "default".into(),
                role: Role::Admin,
            }),
            None if users.is_empty() && user.is_none() => Err(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into(),
            ),
            // Nothing to check against: the `default` user of a node without passwords.
            None if users.is_empty() => Ok(Access {
                user: "default".into(),
                role: Role::Admin,
            }),
            _ => Err(WRONGPASS.into()),
        };
    }
    users
        .iter()
        .find(|u| u.name.as_bytes() == name && same(u.password.as_bytes(), password))
        .map(|u| Access {
            user: u.name.clone(),
            role: u.role,
        })
        .ok_or_else(|| WRONGPASS.into())
}

/// Byte equality whose time does not depend on where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..n {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// Checks the `users` table: unique names, none called `default`, no empty passwords.
pub fn validate(users: &[UserConfig]) -> Result<(), String> {
    let mut names = std::collections::BTreeSet::new();
    for user in users {
        if user.name == "default" {
            return Err("a [[users]] entry may not be called \"default\": set requirepass for the default user".into());
        }
        if user.name.is_empty() || user.password.is_empty() {
            return Err("every [[users]] entry needs a name and a non-empty password".into());
        }
        if !names.insert(&user.name) {
            return Err(format!("user {:?} is defined twice", user.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> Vec<UserConfig> {
        vec![UserConfig {
            name: "reader".into(),
            password: "r3ad".into(),
            role: Role::ReadOnly,
        }]
    }

    #[test]
    fn without_passwords_everyone_is_default_and_auth_says_so() {
        assert_eq!(initial(None, &[]).unwrap().role, Role::Admin);
        let err = authenticate(None, &[], None, b"x").unwrap_err();
        assert!(err.contains("without any password configured"), "{err}");
        assert!(authenticate(None, &[], Some(b"default"), b"x").is_ok());
    }

    #[test]
    fn requirepass_and_users_check_the_password_and_give_the_role() {
        let users = reader();
        assert_eq!(initial(Some("pw"), &users), None);
        assert_eq!(
            initial(None, &users),
            None,
            "users alone close anonymous access"
        );
        let default = authenticate(Some("pw"), &users, None, b"pw").unwrap();
        assert_eq!(default.role, Role::Admin);
        assert_eq!(
            authenticate(Some("pw"), &users, None, b"pW"),
            Err(WRONGPASS.into())
        );
        let reader = authenticate(Some("pw"), &users, Some(b"reader"), b"r3ad").unwrap();
        assert_eq!(
            (reader.user.as_str(), reader.role),
            ("reader", Role::ReadOnly)
        );
        assert!(authenticate(None, &users, Some(b"reader"), b"r3a").is_err());
        assert!(authenticate(None, &users, Some(b"nobody"), b"r3ad").is_err());
        assert!(authenticate(None, &users, None, b"").is_err());
    }

    #[test]
    fn equality_needs_equal_length_and_bytes() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(!same(b"", b"\0"));
        assert!(same(b"", b""));
    }
}
