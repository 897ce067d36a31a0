//! The administration commands: `migrate` and `user …`. They open the same database as the
//! server (safe while it runs) and print their results for operators.

use uuid::Uuid;

use crate::auth::{self, password};
use crate::config::UserCommand;
use crate::domain::{Role, Timestamp};
use crate::store::{self, DatabaseUrl, NewUser};

pub async fn migrate(database: &DatabaseUrl) -> anyhow::Result<()> {
    let store = store::open(database).await?;
    store.close().await;
    println!("The database is at the latest schema.");
    Ok(())
}

pub async fn purge(database: &DatabaseUrl, older_than: std::time::Duration) -> anyhow::Result<()> {
    let store = store::open(database).await?;
    let report = store.purge(purge_cutoff(older_than)).await;
    store.close().await;
    println!(
        "Purged {} row(s) logically deleted more than {}s ago.",
        report?.rows,
        older_than.as_secs()
    );
    Ok(())
}

/// The stamp before which deleted rows are purged.
pub fn purge_cutoff(older_than: std::time::Duration) -> Timestamp {
    let ticks = i64::try_from(older_than.as_nanos() / 100).unwrap_or(i64::MAX);
    Timestamp::from_ticks(Timestamp::now().ticks().saturating_sub(ticks))
}

/// The password given with `--password`; else typed twice at the terminal (not echoed); else,
/// with no terminal (scripts), a generated one that is printed. True when generated.
fn choose_password(given: Option<String>) -> anyhow::Result<(String, bool)> {
    use std::io::IsTerminal;
    if let Some(p) = given.filter(|p| !p.is_empty()) {
        return Ok((p, false));
    }
    if !std::io::stdin().is_terminal() {
        return Ok((password::generate(), true));
    }
    let first = rpassword::prompt_password("Password: ")?;
    if first.is_empty() {
        anyhow::bail!("the password must not be empty");
    }
    let again = rpassword::prompt_password("Password again: ")?;
    if first != again {
        anyhow::bail!("the passwords do not match");
    }
    Ok((first, false))
}

pub async fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            db,
            domain,
            username,
            role,
            user_id,
            password,
        } => {
            let user_id = match (role, user_id) {
                (Role::Technician, None) => anyhow::bail!(
                    "a technician needs --user-id: the user_id of their rows in job_dispatch_log"
                ),
                (Role::Technician, Some(id)) if id.is_nil() => {
                    anyhow::bail!("--user-id must not be all zeros")
                }
                (_, id) => id.unwrap_or(Uuid::nil()),
            };
            let (password, generated) = choose_password(password)?;
            let store = store::open(&db.database).await?;
            let created = store
                .add_user(NewUser {
                    domain: domain.clone(),
                    username: username.clone(),
                    password_hash: password::hash(&password),
                    role,
                    user_id,
                })
                .await;
            store.close().await;
            if !created? {
                anyhow::bail!("user {username}@{domain} already exists");
            }
            println!("Added {role} {username}@{domain}.");
            if generated {
                println!("Password: {password}");
            }
            Ok(())
        }
        UserCommand::List { db, domain } => {
            let store = store::open(&db.database).await?;
            let users = store.list_users(domain.as_deref()).await;
            store.close().await;
            for u in users? {
                let linked = if u.role == Role::Technician {
                    format!(" user_id={}", u.user_id)
                } else {
                    String::new()
                };
                println!("{}@{}\t{}{linked}", u.username, u.domain, u.role);
            }
            Ok(())
        }
        UserCommand::Remove {
            db,
            domain,
            username,
        } => {
            let store = store::open(&db.database).await?;
            let removed = store.remove_user(&domain, &username).await;
            store.close().await;
            if !removed? {
                anyhow::bail!("no user {username}@{domain}");
            }
            println!("Removed {username}@{domain}.");
            Ok(())
        }
        UserCommand::Token {
            db,
            domain,
            username,
            revoke,
        } => {
            let store = store::open(&db.database).await?;
            let result = if revoke {
                store
                    .revoke_tokens(&domain, &username)
                    .await
                    .map(|n| format!("Revoked {n} token(s) of {username}@{domain}."))
            } else {
                let token = auth::new_token();
                store
                    .add_token(&domain, &username, &auth::token_hash(&token))
                    .await
                    .map(|added| {
                        if added {
                            format!(
                                "New bearer token for {username}@{domain} (shown once): {token}"
                            )
                        } else {
                            String::new()
                        }
                    })
            };
            store.close().await;
            let message = result?;
            if message.is_empty() {
                anyhow::bail!("no user {username}@{domain}");
            }
            println!("{message}");
            Ok(())
        }
        UserCommand::Passwd {
            db,
            domain,
            username,
            password,
        } => {
            let (password, generated) = choose_password(password)?;
            let store = store::open(&db.database).await?;
            let changed = store
                .set_password(&domain, &username, &password::hash(&password))
                .await;
            store.close().await;
            if !changed? {
                anyhow::bail!("no user {username}@{domain}");
            }
            println!("Changed the password of {username}@{domain}.");
            if generated {
                println!("Password: {password}");
            }
            Ok(())
        }
    }
}
