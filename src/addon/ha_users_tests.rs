use super::*;
use crate::config::ExtensionConfig;

fn user(id: &str, name: &str) -> HaUser {
    HaUser { id: id.into(), name: name.into() }
}

fn set(items: &[&str]) -> HashSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn plan_numbers_from_start_skipping_taken() {
    let users = [user("a", "Alice"), user("b", "Bob"), user("c", "Carol")];
    let p = plan(&HashMap::new(), &users, &set(&["101", "9"]), 100).unwrap();
    let got: Vec<(&str, &str)> = p.add.iter().map(|(u, e)| (u.id.as_str(), e.as_str())).collect();
    assert_eq!(got, [("a", "100"), ("b", "102"), ("c", "103")]);
    assert!(p.remove.is_empty() && p.rename.is_empty());
}

#[test]
fn plan_keeps_existing_removes_gone_renames_changed() {
    let mut current = HashMap::new();
    current.insert("a".to_string(), ("100".to_string(), "Alice".to_string()));
    current.insert("b".to_string(), ("101".to_string(), "Bob".to_string()));
    let users = [user("a", "Alice Smith"), user("c", "Carol")];
    let p = plan(&current, &users, &set(&["100", "101"]), 100).unwrap();
    // Bob's number is still taken while the plan is made: Carol gets 102.
    assert_eq!(p.add, vec![(user("c", "Carol"), "102".to_string())]);
    assert_eq!(p.remove, vec![("b".to_string(), "101".to_string())]);
    assert_eq!(p.rename, vec![("100".to_string(), "Alice Smith".to_string())]);
}

#[test]
fn plan_ignores_duplicate_users() {
    let p = plan(&HashMap::new(), &[user("a", "A"), user("a", "A")], &HashSet::new(), 200).unwrap();
    assert_eq!(p.add.len(), 1);
    assert_eq!(p.add[0].1, "200");
}

#[test]
fn passwords_are_long_random_alphanumerics() {
    let a = generate_password();
    let b = generate_password();
    assert_eq!(a.len(), PASSWORD_LEN);
    assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_ne!(a, b);
}

#[tokio::test]
async fn sync_allocates_persists_and_removes() {
    let store = Store::open_in_memory().await.unwrap();
    // 101 belongs to the options (config source)
    store
        .sync_config_extensions(&[ExtensionConfig { extension: "101".into(), password: "door-secret".into(), name: Some("Door".into()) }])
        .await
        .unwrap();

    let first = sync(&store, &[user("u1", "Alice"), user("u2", "Bob")], 100).await.unwrap();
    let nums: Vec<&str> = first.iter().map(|e| e.extension.as_str()).collect();
    assert_eq!(nums, ["100", "102"]);
    assert!(first.iter().all(|e| e.password.len() == PASSWORD_LEN));

    // the rows are real extensions, owned by ha_user, with the user's name
    let rows = store.extensions().await.unwrap();
    let alice = rows.iter().find(|r| r.extension == "100").unwrap();
    assert_eq!((alice.source.as_str(), alice.name.as_deref()), (SOURCE_HA_USER, Some("Alice")));
    assert_eq!(alice.password, first[0].password);

    // same users again: nothing changes, passwords are kept
    let again = sync(&store, &[user("u2", "Bob"), user("u1", "Alice")], 100).await.unwrap();
    assert_eq!(again, first);

    // Alice leaves while Carol arrives: a number freed in this sync is not
    // handed out in the same sync, so Carol gets 103 ...
    let after = sync(&store, &[user("u2", "Bob"), user("u3", "Carol")], 100).await.unwrap();
    let got: Vec<(&str, &str)> = after.iter().map(|e| (e.user_id.as_str(), e.extension.as_str())).collect();
    assert_eq!(got, [("u2", "102"), ("u3", "103")]);
    // ... and the next new user gets the lowest free one, 100, with a new password
    let after = sync(&store, &[user("u2", "Bob"), user("u3", "Carol"), user("u4", "Dan")], 100).await.unwrap();
    let got: Vec<(&str, &str)> = after.iter().map(|e| (e.user_id.as_str(), e.extension.as_str())).collect();
    assert_eq!(got, [("u4", "100"), ("u2", "102"), ("u3", "103")]);
    assert_ne!(after[0].password, first[0].password, "a new user never inherits a password");

    // the options' extension was never touched
    let rows = store.extensions().await.unwrap();
    let door = rows.iter().find(|r| r.extension == "101").unwrap();
    assert_eq!((door.source.as_str(), door.password.as_str()), ("config", "door-secret"));

    // config sync (every start) leaves ha_user rows alone
    store.sync_config_extensions(&[]).await.unwrap();
    assert_eq!(list(&store).await.unwrap(), after);
}

#[tokio::test]
async fn sync_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let first = sync(&store, &[user("u1", "Alice")], 300).await.unwrap();
    drop(store);
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(list(&store).await.unwrap(), first);
    assert_eq!(first[0].extension, "300");
}
